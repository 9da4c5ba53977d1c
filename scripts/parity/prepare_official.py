"""Prepare the official VideoReTalking code to run on CPU, offline, on seeded checkpoints.

Why: the project claims to reproduce the official ``inference.py``. Checkpoints
cannot be downloaded here, so the claim is tested on deterministic seeded
weights (protocol ``seeded-v1``, ``talkingface/weights/seeded.py``) written in the
*official file formats*: the official code and the project then load the very
same folder (the official with its own loaders, the project strictly).

Run in the reference environment (../shared/ENVIRONMENT.md, e.g. /work/refenv):

    /work/refenv/bin/python scripts/parity/prepare_official.py \
        --official /work/ref/video-retalking --out /work/refrun/official

It writes

* ``OUT/code``        a copy of the official checkout (``.git`` left out) with the
                      patches below applied; nothing else of it is changed;
* ``OUT/site``        the versions the official ``requirements.txt`` pins where the
                      reference venv has newer ones that behave differently:
                      face-alignment 1.3.4 and facexlib 0.2.5 (``pip install
                      --no-deps --target``; skipped with ``--no-pins``);
* ``OUT/checkpoints`` the full seeded checkpoint folder, official formats (list below);
                      ``OUT/code/checkpoints`` is a link to it (the official code reads
                      ``checkpoints/...`` relative to its folder);
* ``OUT/torch_home/hub/checkpoints`` and ``OUT/site/facexlib/weights``: the files the
                      official code would download at run time, pre-placed;
* ``OUT/env.sh``      the environment to run it with (``TORCH_HOME``, ``PYTHONPATH``,
                      one thread);
* ``OUT/PATCHES.md``  every patch and every written file, with its sha256.

Patches (each is an exact text replacement that must match once, else the script
stops: a changed checkout is never patched silently):

1. ``inference.py`` top: ``torchvision.transforms.functional_tensor`` is aliased to
   ``torchvision.transforms.functional`` before basicsr is imported (basicsr 1.4.2
   imports the module torchvision removed in 0.17; the one function it uses,
   ``rgb_to_grayscale``, lives on in ``functional``).
2. numpy 2, ``third_part/face3d/util/preprocess.py``: ``np.VisibleDeprecationWarning``
   -> ``np.exceptions.VisibleDeprecationWarning``; ``POS``: the ``lstsq`` solution is
   flattened (``t`` was a pair of (1,) arrays, which numpy 2 refuses to stack with
   scalars) and ``rcond=-1`` keeps numpy<2's default cut-off. Same numbers.
3. numpy 2, ``inference.py``: ``float(item)`` of the (1,) pieces of ``trans_params``
   -> ``float(item.item())`` (numpy 2 refuses ``float`` of a 1-d array). Same numbers.
4. numpy 2, ``third_part/face_detection/utils.py``: ``np.int`` -> ``int``.
5. librosa >= 0.10, ``utils/audio.py``: ``librosa.filters.mel`` takes keyword
   arguments only (``sr=``, ``n_fft=``). Same filter bank.
site-1. face-alignment 1.3.4 ``utils.transform`` (two places): ``t[0, 0] = resolution / h``
   -> ``float(...)``: torch 2.x refuses a numpy.float32 assigned into a tensor element;
   the TypeError is caught by ``KeypointExtractor`` as "No face detected", so without
   this every official landmark is -1. Same numbers.
6. no CUDA: the official code picks ``cpu`` itself when CUDA is absent
   (``torch.cuda.empty_cache()`` is a no-op there); no ``.cuda()`` call is on the
   inference path, so nothing is patched for it. The run script hides GPUs
   (``CUDA_VISIBLE_DEVICES=``).
7. no downloads: s3fd-619a316812.pth and 2DFAN4-cd938726ad.zip in
   ``TORCH_HOME/hub/checkpoints`` (torch.hub / face-alignment), detection_Resnet50_Final.pth
   and parsing_parsenet.pth in facexlib 0.2.5's ``facexlib/weights``.

Checkpoint files (all seeded-v1, seed ``--seed``; every net filled through the
official module class itself, keys checked against tests/fixtures/parity/*.keys.json):

| file | format | module |
|---|---|---|
| DNet.pt | ``{'net_G_ema': sd}`` | models.DNet.DNet |
| LNet.pth | ``{'state_dict': sd}``, keys ``module.``-prefixed | models.LNet.LNet |
| ENet.pth | ``{'state_dict': sd}``, ``module.``; E-Net's own keys seeded under their E-Net names, ``low_res.*`` = the L-Net above (both loaders ignore them) | models.ENet.ENet |
| face3d_pretrain_epoch_20.pth | ``{'net_recon': sd}`` | face3d networks.define_net_recon('resnet50') |
| GPEN-BFR-512.pth | state dict | GPEN FullGenerator(512, 512, 8, 2, narrow=1) |
| ParseNet-latest.pth | state dict | GPEN ParseNet(512, 512, 32, 64, 19, bn, LeakyReLU) |
| RetinaFace-R50.pth | state dict | GPEN RetinaFace(cfg_re50) |
| GFPGANv1.3.pth | ``{'params_ema': sd}`` | GFPGANv1Clean(512, 512, 2, clean settings) |
| shape_predictor_68_face_landmarks.dat | dlib | the real file, from face_recognition_models |
| expression.mat | ``expression_center`` / ``expression_mouth`` (1, 64) | the project's seeded templates (``recon3d.seeded_expression``) |
| BFM/similarity_Lm3D_all.mat | ``lm`` (68, 3) | a 68-point array whose 5 alignment points are the project's ``recon3d._SEEDED_LM3D`` |
| hub: s3fd-619a316812.pth | state dict | face_detection s3fd() |
| hub: 2DFAN4-cd938726ad.zip | TorchScript (trace) | face-alignment's FAN(4), returning the last stack as the official archive does |
| facexlib: detection_Resnet50_Final.pth | state dict | facexlib RetinaFace('resnet50') |
| facexlib: parsing_parsenet.pth | state dict | facexlib ParseNet(512, 512, 19) |

SEEDED WEIGHTS: every network here paints noise. The folder exists to prove that
the same files give the same numbers on both sides, never to produce results.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARITY_KEYS = REPO / "tests" / "fixtures" / "parity"

log = logging.getLogger("prepare_official")


@dataclass(frozen=True)
class Patch:
    path: str
    old: str
    new: str
    why: str
    count: int = 1  # exact number of occurrences expected


SHIM = ("import sys as _tf_sys, torchvision.transforms.functional as _tf_functional  # PATCH 1\n"
        "_tf_sys.modules.setdefault('torchvision.transforms.functional_tensor', _tf_functional)  # PATCH 1\n")

PATCHES: list[Patch] = [
    Patch("inference.py", "import numpy as np\n", SHIM + "import numpy as np\n",
          "basicsr 1.4.2 imports torchvision.transforms.functional_tensor (removed in torchvision 0.17)"),
    Patch("third_part/face3d/util/preprocess.py", "np.VisibleDeprecationWarning", "np.exceptions.VisibleDeprecationWarning",
          "numpy 2 moved the warning class"),
    Patch("third_part/face3d/util/preprocess.py", "    k, _, _, _ = np.linalg.lstsq(A, b)\n",
          "    k = np.linalg.lstsq(A, b, rcond=-1)[0].reshape(-1)  # PATCH 2\n",
          "numpy 2 refuses the ragged trans_params array built from (1,) pieces; rcond=-1 = numpy<2 default"),
    Patch("inference.py",
          "            trans_params = np.array([float(item) for item in np.hsplit(trans_params, 5)]).astype(np.float32)\n",
          "            trans_params = np.array([float(item.item()) for item in np.hsplit(trans_params, 5)]).astype(np.float32)  # PATCH 3\n",
          "numpy 2 refuses float() of a 1-d array"),
    Patch("third_part/face_detection/utils.py", "dtype=np.int)", "dtype=int)", "numpy 2 removed np.int"),
    Patch("utils/audio.py", "librosa.filters.mel(hp.sample_rate, hp.n_fft, n_mels=",
          "librosa.filters.mel(sr=hp.sample_rate, n_fft=hp.n_fft, n_mels=",
          "librosa >= 0.10 takes keyword arguments only"),
]

PINS = ["face-alignment==1.3.4", "facexlib==0.2.5"]

#: patches of the pinned packages in OUT/site (applied after install)
SITE_PATCHES: list[Patch] = [
    Patch("face_alignment/utils.py", "    t[0, 0] = resolution / h\n    t[1, 1] = resolution / h\n",
          "    t[0, 0] = float(resolution / h)  # PATCH site-1\n    t[1, 1] = float(resolution / h)  # PATCH site-1\n",
          "torch >= 2.x refuses assigning a numpy.float32 into a tensor element (TypeError, which "
          "KeypointExtractor reports as 'No face detected' and turns into -1 landmarks)", count=2),
]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def copy_checkout(official: Path, code: Path) -> None:
    if not (official / "inference.py").is_file():
        sys.exit(f"error: {official} has no inference.py; pass the path of an OpenTalker/video-retalking checkout")
    if code.exists():
        shutil.rmtree(code)
    shutil.copytree(official, code, ignore=shutil.ignore_patterns(".git", "checkpoints", "temp", "__pycache__"))


def apply_patches(code: Path, patches: list[Patch]) -> list[str]:
    """Apply each patch exactly once; stop when the text is not there exactly once."""
    done = []
    for i, patch in enumerate(patches, 1):
        path = code / patch.path
        text = path.read_text()
        count = text.count(patch.old)
        if count != patch.count:
            sys.exit(f"error: patch {i} ({patch.path}): the text to replace occurs {count} times, expected "
                     f"{patch.count}; the code differs from the version this patch was written for")
        path.write_text(text.replace(patch.old, patch.new))
        old, new = patch.old.strip().splitlines()[0], patch.new.strip().splitlines()[0]
        done.append(f"{i}. `{patch.path}`: `{old[:80]}` -> `{new[:100]}` ({patch.why})")
    return done


def install_pins(site: Path) -> None:
    if site.exists():
        shutil.rmtree(site)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--target", str(site), *PINS]
    log.info("installing the official pins: %s", " ".join(PINS))
    subprocess.run(cmd, check=True)


def official_imports(code: Path, site: Path | None) -> None:
    """Make the official modules importable the way inference.py does (plus the pinned site)."""
    for extra in ("third_part/GFPGAN", "third_part/GPEN", "third_part", ""):
        sys.path.insert(0, str(code / extra) if extra else str(code))
    if site is not None and site.exists():
        sys.path.insert(0, str(site))
    import torchvision.transforms.functional as functional

    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional)


def keys_match(name: str, state: dict) -> None:
    """Key/shape check against the stored official layout (tests/fixtures/parity/<name>.keys.json)."""
    path = PARITY_KEYS / f"{name}.keys.json"
    if not path.is_file():
        return
    expected = json.loads(path.read_text())
    got = {k: list(v.shape) for k, v in state.items()}
    if set(got) != set(expected) or any(got[k] != list(expected[k]) for k in expected):
        diff = sorted(set(got) ^ set(expected))[:5]
        sys.exit(f"error: {name}: the official module's state dict differs from {path.name} ({diff})")


def seeded_states(seed: int) -> dict[str, dict]:
    """Every network, built from the official classes, filled by seeded-v1."""
    import torch

    sys.path.insert(0, str(REPO))
    from talkingface.models.video_retalking.networks.loading import enet_head
    from talkingface.weights.seeded import seeded_state_dict

    from models.DNet import DNet
    from models.ENet import ENet
    from models.LNet import LNet
    from third_part.face3d.models import networks as face3d_networks
    from face_model.gpen_model import FullGenerator
    from face_parse.parse_model import ParseNet
    from face_detect.facemodels.retinaface import RetinaFace
    from face_detect.data import cfg_re50
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean
    from third_part.face_detection.detection.sfd.net_s3fd import s3fd
    from facexlib.detection.retinaface import RetinaFace as XRetinaFace
    from facexlib.parsing.parsenet import ParseNet as XParseNet

    torch.manual_seed(0)  # constructors draw init weights; every value is overwritten below
    out: dict[str, dict] = {}
    lnet = LNet()
    out["LNet"] = seeded_state_dict(lnet, seed)
    enet = ENet(lnet=lnet)
    enet_state = dict(seeded_state_dict(enet_head(enet), seed))  # the official E-Net, same children
    enet_state.update({f"low_res.{k}": v for k, v in out["LNet"].items()})
    out["ENet"] = {k: enet_state[k] for k in enet.state_dict()}
    out["DNet"] = seeded_state_dict(DNet(), seed)
    out["ReconNet"] = seeded_state_dict(face3d_networks.define_net_recon("resnet50", use_last_fc=False,
                                                                         init_path=""), seed)
    out["GPEN"] = seeded_state_dict(FullGenerator(512, 512, 8, 2, narrow=1, device="cpu"), seed)
    out["ParseNet"] = seeded_state_dict(ParseNet(512, 512, 32, 64, 19, norm_type="bn", relu_type="LeakyReLU",
                                                 ch_range=[32, 256]), seed)
    out["RetinaFace"] = seeded_state_dict(RetinaFace(cfg=cfg_re50, phase="test"), seed)
    out["GFPGAN"] = seeded_state_dict(GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2,
                                                    decoder_load_path=None, fix_decoder=False, num_mlp=8,
                                                    input_is_latent=True, different_w=True, narrow=1,
                                                    sft_half=True), seed)
    out["S3FD"] = seeded_state_dict(s3fd(), seed)
    out["XRetinaFace"] = seeded_state_dict(XRetinaFace(network_name="resnet50", half=False), seed)
    out["XParseNet"] = seeded_state_dict(XParseNet(in_size=512, out_size=512, parsing_ch=19), seed)
    for name, state in out.items():
        keys_match(name, state)
    return out


def fan_class():
    """face-alignment's Python ``FAN`` class (>= 1.4 ships ``models/fan.py``; 1.3.4 only the archive).

    The pinned 1.3.4 in OUT/site shadows the reference venv's package, so the file is
    found on the other path entries and loaded by location.
    """
    import importlib.util

    for entry in sys.path:
        path = Path(entry) / "face_alignment" / "models" / "fan.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("_face_alignment_fan", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.FAN
    sys.exit("error: no face_alignment/models/fan.py on sys.path; install face-alignment>=1.4 in the reference venv")


def traced_fan(seed: int):
    """face-alignment's FAN(4), seeded, traced like the official 2DFAN4 archive (returns the last stack)."""
    import torch

    sys.path.insert(0, str(REPO))
    from talkingface.weights.seeded import seeded_state_dict

    FAN = fan_class()

    class LastStackFAN(FAN):
        def forward(self, x):  # the official TorchScript archive returns the last hourglass's heatmaps
            return super().forward(x)[-1]

    net = LastStackFAN(4)
    state = seeded_state_dict(net, seed)
    keys_match("FAN", state)
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        return torch.jit.trace(net, torch.zeros(1, 3, 256, 256), check_trace=False)


def lm3d_68() -> "object":
    """A (68, 3) ``lm`` whose 5 alignment points (official load_lm3d) are the project's seeded template."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from talkingface.face.recon3d import _SEEDED_LM3D  # (5, 3): left eye, right eye, nose, mouth left, right

    lm = np.zeros((68, 3), np.float64)
    eye_l, eye_r, nose, mouth_l, mouth_r = _SEEDED_LM3D
    lm[[36, 39]] = eye_l   # official: mean of points 37 and 40 (1-based)
    lm[[42, 45]] = eye_r   # mean of 43 and 46
    lm[30] = nose          # 31
    lm[48] = mouth_l       # 49
    lm[54] = mouth_r       # 55
    return lm


def write_checkpoints(out: Path, site: Path, seed: int) -> list[tuple[str, Path]]:
    import torch
    from scipy.io import savemat

    sys.path.insert(0, str(REPO))
    from talkingface.face.recon3d import seeded_expression

    ckpt = out / "checkpoints"
    hub = out / "torch_home" / "hub" / "checkpoints"
    xweights = site / "facexlib" / "weights"
    for folder in (ckpt, ckpt / "BFM", hub, xweights):
        folder.mkdir(parents=True, exist_ok=True)
    states = seeded_states(seed)
    module = lambda sd: {f"module.{k}": v for k, v in sd.items()}  # noqa: E731 - DataParallel key names
    files = {
        ckpt / "DNet.pt": {"net_G_ema": states["DNet"]},
        ckpt / "LNet.pth": {"state_dict": module(states["LNet"])},
        ckpt / "ENet.pth": {"state_dict": module(states["ENet"])},
        ckpt / "face3d_pretrain_epoch_20.pth": {"net_recon": states["ReconNet"]},
        ckpt / "GPEN-BFR-512.pth": states["GPEN"],
        ckpt / "ParseNet-latest.pth": states["ParseNet"],
        ckpt / "RetinaFace-R50.pth": states["RetinaFace"],
        ckpt / "GFPGANv1.3.pth": {"params_ema": states["GFPGAN"]},
        hub / "s3fd-619a316812.pth": states["S3FD"],
        xweights / "detection_Resnet50_Final.pth": states["XRetinaFace"],
        xweights / "parsing_parsenet.pth": states["XParseNet"],
    }
    written = []
    for path, obj in files.items():
        tmp = path.with_name(path.name + ".tmp")
        torch.save(obj, tmp)
        os.replace(tmp, path)
        written.append((str(path.relative_to(out)), path))
    fan = hub / "2DFAN4-cd938726ad.zip"
    traced_fan(seed).save(str(fan))
    written.append((str(fan.relative_to(out)), fan))
    savemat(str(ckpt / "expression.mat"), {"expression_center": seeded_expression("neutral", seed)[None],
                                           "expression_mouth": seeded_expression("smile", seed)[None]})
    savemat(str(ckpt / "BFM" / "similarity_Lm3D_all.mat"), {"lm": lm3d_68()})
    import face_recognition_models

    dat = ckpt / "shape_predictor_68_face_landmarks.dat"
    shutil.copyfile(face_recognition_models.pose_predictor_model_location(), dat)
    for path in (ckpt / "expression.mat", ckpt / "BFM" / "similarity_Lm3D_all.mat", dat):
        written.append((str(path.relative_to(out)), path))
    return written


def write_env(out: Path, site: Path) -> None:
    (out / "env.sh").write_text(
        "# source this before running the patched official code (written by prepare_official.py)\n"
        f"export TORCH_HOME={out / 'torch_home'}\n"
        f"export PYTHONPATH={site}\n"
        "export CUDA_VISIBLE_DEVICES=\n"
        "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="OpenTalker/video-retalking checkout (read only)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (outside the repository)")
    parser.add_argument("--seed", type=int, default=0, help="seeded-v1 seed (the project's config key `seed`)")
    parser.add_argument("--no-pins", action="store_true",
                        help="use the reference venv's face-alignment/facexlib instead of the official pins")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    out = args.out.resolve()
    if REPO in out.parents or out == REPO:
        sys.exit(f"error: --out {out} is inside the repository; the official code must not be committed")
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    code, site = out / "code", out / "site"
    copy_checkout(args.official.resolve(), code)
    done = apply_patches(code, PATCHES)
    if args.no_pins:
        site.mkdir(exist_ok=True)
    else:
        install_pins(site)
        done += [f"site-{d}" for d in apply_patches(site, SITE_PATCHES)]
    official_imports(code, site)
    log.warning("SEEDED WEIGHTS (seeded-v1, seed=%d): every network of this folder paints noise", args.seed)
    written = write_checkpoints(out, site, args.seed)
    link = code / "checkpoints"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(out / "checkpoints", target_is_directory=True)
    write_env(out, site)
    commit = subprocess.run(["git", "-C", str(args.official), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    lines = [f"# Patched official VideoReTalking (from {args.official} @ {commit})", "",
             f"Made by scripts/parity/prepare_official.py; seeded-v1 seed {args.seed}; "
             f"torch {torch.__version__}; pins: {'none (--no-pins)' if args.no_pins else ', '.join(PINS)}.", "",
             "## Patches", "", *done,
             f"{len(done) + 1}. no `.cuda()` on the inference path: nothing patched; run with "
             "`CUDA_VISIBLE_DEVICES=` (env.sh).",
             f"{len(done) + 2}. runtime downloads pre-placed (files below under torch_home/ and "
             "site/facexlib/weights/).", "",
             "## Files (SEEDED WEIGHTS: meaningless as results)", "", "| file | sha256 |", "|---|---|",
             *[f"| {rel} | {sha256(path)} |" for rel, path in written]]
    (out / "PATCHES.md").write_text("\n".join(lines) + "\n")
    log.info("wrote %s (code, checkpoints, env.sh, PATCHES.md)", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
