"""The official weight files: where they come from, how to check them, where they live.

One manifest serves ``checkpoints list|verify|download``, the pre-flight check of
a run (stop before any work, with the exact command to fix it) and every loader
(which asks :func:`checkpoint_path` for its file instead of hard-coding paths).
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from talkingface.errors import CheckpointError

log = logging.getLogger(__name__)

RELEASE = "https://github.com/vinthony/video-retalking/releases/download/v0.0.1/"
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "checkpoints"  # <repo>/checkpoints


@dataclass(frozen=True)
class CheckpointSpec:
    name: str
    filename: str
    url: str
    loader: str
    size: int | None = None
    sha256: str | None = None
    group: str = "video_retalking"
    unpack: bool = False  # a zip expanded into a folder named like the file stem
    fallback: str | None = None  # a package that ships the same file offline
    #: False for files of the official release that no option of this project loads: listed, never
    #: proposed by ``verify --all`` / ``download --all`` (name them to fetch them anyway)
    used: bool = True


MANIFEST: dict[str, CheckpointSpec] = {spec.name: spec for spec in [
    CheckpointSpec("dnet", "DNet.pt", RELEASE + "DNet.pt", "DNet <- ['net_G_ema']"),
    CheckpointSpec("lnet", "LNet.pth", RELEASE + "LNet.pth", "LNet <- ['state_dict'] (module.)"),
    CheckpointSpec("enet", "ENet.pth", RELEASE + "ENet.pth",
                   "ENet <- ['state_dict'] (module., low_res.* ignored)"),
    CheckpointSpec("face3d", "face3d_pretrain_epoch_20.pth", RELEASE + "face3d_pretrain_epoch_20.pth",
                   "ReconNet <- ['net_recon']"),
    CheckpointSpec("bfm", "BFM", RELEASE + "BFM.zip", "similarity_Lm3D_all.mat (3DMM alignment)",
                   unpack=True),
    CheckpointSpec("expression", "expression.mat", RELEASE + "expression.mat",
                   "expression templates (expression_center, expression_mouth)"),
    CheckpointSpec("gpen", "GPEN-BFR-512.pth", RELEASE + "GPEN-BFR-512.pth", "GPEN FullGenerator 512"),
    CheckpointSpec("gfpgan", "GFPGANv1.3.pth", RELEASE + "GFPGANv1.3.pth",
                   "GFPGANv1Clean <- ['params_ema']"),
    CheckpointSpec("parsenet", "ParseNet-latest.pth", RELEASE + "ParseNet-latest.pth", "ParseNet 512, 19 classes"),
    CheckpointSpec("retinaface", "RetinaFace-R50.pth", RELEASE + "RetinaFace-R50.pth", "RetinaFace ResNet-50"),
    CheckpointSpec("gfpgan_detection", "detection_Resnet50_Final.pth",
                   "https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
                   "facexlib retinaface_resnet50 (GFPGANer's face alignment)"),
    CheckpointSpec("gfpgan_parsing", "parsing_parsenet.pth",
                   "https://github.com/xinntao/facexlib/releases/download/v0.2.2/parsing_parsenet.pth",
                   "facexlib ParseNet (loaded by the official GFPGANer, unused there: use_parse=False)"),
    CheckpointSpec("dlib_landmarks", "shape_predictor_68_face_landmarks.dat",
                   RELEASE + "shape_predictor_68_face_landmarks.dat", "dlib 68-point shape predictor",
                   fallback="face_recognition_models"),
    CheckpointSpec("ganimation", "30_net_gen.pth", RELEASE + "30_net_gen.pth",
                   "GANimation upper-face edit (not supported: up_face must be 'original')", used=False),
    CheckpointSpec("s3fd", "s3fd-619a316812.pth",
                   "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
                   "S3FD face detector (face-alignment)", group="face"),
    CheckpointSpec("fan", "2DFAN4-cd938726ad.zip",
                   "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-cd938726ad.zip",
                   "FAN 2D 68-point landmarks (TorchScript zip of face-alignment)", group="face"),
    CheckpointSpec("syncnet", "syncnet_v2.model",
                   "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
                   "SyncNet (LSE-C / LSE-D)", group="evaluation"),
    CheckpointSpec("syncnet_s3fd", "sfd_face.pth",
                   "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
                   "S3FD of syncnet_python (LSE face crops)", group="evaluation"),
    CheckpointSpec("inception", "pt_inception-2015-12-05-6726825d.pth",
                   "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth",
                   "FID Inception-v3 (pytorch-fid)", group="evaluation"),
]}


def checkpoint_root(root: str | Path | None = None) -> Path:
    """The folder a loader reads: the configured ``checkpoint_dir``; ./checkpoints for a direct call.

    No environment variable is read here: ``TALKINGFACE_CHECKPOINTS`` is only the default of
    ``checkpoint_dir`` in the config layers (config/loader.py), so the pre-flight and every loader
    see the same folder.
    """
    return Path(root) if root is not None else Path(DEFAULT_ROOT)


def get_spec(name: str) -> CheckpointSpec:
    try:
        return MANIFEST[name]
    except KeyError:
        raise CheckpointError(f"unknown checkpoint {name!r}",
                              hint="known: " + ", ".join(sorted(MANIFEST))) from None


def fallback_path(spec: CheckpointSpec) -> Path | None:
    """The same file shipped inside an installed package, if any."""
    if spec.fallback == "face_recognition_models":
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import face_recognition_models
            path = Path(face_recognition_models.pose_predictor_model_location())
        except Exception:  # package absent or broken: no fallback
            return None
        return path if path.is_file() else None
    return None


def find_checkpoint(name: str, root: str | Path | None = None) -> Path | None:
    spec = get_spec(name)
    path = checkpoint_root(root) / spec.filename
    if path.exists():
        return path
    return fallback_path(spec)


def missing_message(names: Iterable[str], root: str | Path | None = None) -> str:
    names = list(names)
    lines = [f"  - {get_spec(n).filename} ({get_spec(n).loader})" for n in names]
    return (f"{len(names)} checkpoint file(s) missing from {checkpoint_root(root)}:\n" + "\n".join(lines))


def fix_command(names: Iterable[str]) -> str:
    return "python -m talkingface checkpoints download " + " ".join(names)


def checkpoint_path(name: str, root: str | Path | None = None) -> Path:
    """Path of an official file; a clear error with the fix command when it is absent."""
    path = find_checkpoint(name, root)
    if path is None:
        raise CheckpointError(missing_message([name], root),
                              hint=f"run `{fix_command([name])}` (or use --weights=seeded for a smoke run)")
    return path


def require(names: Iterable[str], root: str | Path | None = None) -> dict[str, Path]:
    """Pre-flight: all files or one error listing every missing file."""
    names = list(names)
    missing = [n for n in names if find_checkpoint(n, root) is None]
    if missing:
        raise CheckpointError(missing_message(missing, root),
                              hint=f"run `{fix_command(missing)}` (or --weights=seeded / --weights=auto)")
    return {n: checkpoint_path(n, root) for n in names}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class VerifyResult:
    name: str
    path: Path | None
    status: str  # ok | missing | size-mismatch | sha256-mismatch | unchecked
    detail: str = ""


def verify(names: Iterable[str] | None = None, root: str | Path | None = None) -> list[VerifyResult]:
    results = []
    for name in (MANIFEST if names is None else names):
        spec = get_spec(name)
        path = find_checkpoint(name, root)
        if path is None:
            results.append(VerifyResult(name, None, "missing", spec.url))
            continue
        if path.is_dir():
            status = "ok" if any(path.iterdir()) else "missing"
            results.append(VerifyResult(name, path, status, "folder"))
            continue
        size = path.stat().st_size
        if spec.size is not None and size != spec.size:
            results.append(VerifyResult(name, path, "size-mismatch", f"{size} bytes, expected {spec.size}"))
        elif spec.sha256 is not None and sha256_of(path) != spec.sha256:
            results.append(VerifyResult(name, path, "sha256-mismatch", "content differs from the release"))
        elif spec.sha256 is None and sha256_prefix(spec) and not sha256_of(path).startswith(sha256_prefix(spec)):
            results.append(VerifyResult(name, path, "sha256-mismatch",
                                        f"sha256 does not start with {sha256_prefix(spec)} (the hash in its name)"))
        else:
            checked = "" if spec.sha256 else (f", sha256 prefix {sha256_prefix(spec)} matches"
                                               if sha256_prefix(spec) else ", no sha256 known")
            results.append(VerifyResult(name, path, "ok" if spec.sha256 or sha256_prefix(spec) else "unchecked",
                                        f"{size} bytes{checked}"))
    return results


MIRROR_ENV = "TALKINGFACE_CHECKPOINT_MIRROR"
_HUB_HASH = re.compile(r"-([0-9a-f]{8,})\.")


def mirror_base(configured: str | None = None) -> str | None:
    """The mirror base URL: the ``checkpoint_mirror`` config key, else the environment variable."""
    return configured or os.environ.get(MIRROR_ENV) or None


def source_url(spec: CheckpointSpec, mirror: str | None = None) -> str:
    """Where a file is fetched from: ``<mirror>/<file name of the official URL>``, or the official URL."""
    mirror = mirror_base(mirror)
    if not mirror:
        return spec.url
    return mirror.rstrip("/") + "/" + spec.url.rsplit("/", 1)[-1]


def sha256_prefix(spec: CheckpointSpec) -> str | None:
    """The hash prefix a file name carries (``s3fd-619a316812.pth``), checked the way torch.hub does."""
    match = _HUB_HASH.search(spec.filename)
    return match.group(1) if match else None


def check_download(spec: CheckpointSpec, path: Path, expected_size: int | None) -> None:
    """Size (the server's and the manifest's) and sha256 (full or file-name prefix) of a finished download."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise CheckpointError(f"{spec.filename}: the download broke off after {size} of {expected_size} bytes "
                              "(the size the server announced)",
                              hint=f"run the same command again: it resumes from the partial file {path}")
    if spec.size is not None and size != spec.size:
        path.unlink()
        raise CheckpointError(f"{spec.filename}: downloaded {size} bytes but the manifest expects {spec.size}; "
                              "the file was deleted",
                              hint="the server has another file under this name: check the mirror's copy")
    digest = None
    if spec.sha256 is not None or sha256_prefix(spec) is not None:
        digest = sha256_of(path)
    if spec.sha256 is not None and digest != spec.sha256:
        bad = f"sha256 {digest[:16]}... instead of {spec.sha256[:16]}..."
    elif sha256_prefix(spec) is not None and not digest.startswith(sha256_prefix(spec)):
        bad = f"sha256 {digest[:16]}... does not start with {sha256_prefix(spec)} (the hash in its file name)"
    else:
        return
    path.unlink()
    raise CheckpointError(f"{spec.filename}: the downloaded file is corrupt or not the official one ({bad}); "
                          "it was deleted",
                          hint="run the command again; if a mirror serves it, check the mirror's copy")


def download(name: str, root: str | Path | None = None, *, timeout: float = 30.0, mirror: str | None = None,
             spec: CheckpointSpec | None = None) -> Path:
    """Fetch one file into ``<root>/<file>.part`` (resumed when present), check it, then rename it.

    The final name only ever holds a complete, checked file: a corrupt
    download is deleted, a short one stays ``.part`` for the next attempt.
    """
    from tqdm import tqdm

    spec = spec or get_spec(name)
    root = checkpoint_root(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / spec.filename
    archive = root / (spec.filename + ".zip") if spec.unpack else target
    part = archive.with_name(archive.name + ".part")
    url = source_url(spec, mirror)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise _download_error(spec, url, target, f"HTTP {exc.code} {exc.reason}") from None
    except Exception as exc:
        raise _download_error(spec, url, target, str(getattr(exc, "reason", exc))) from None
    total = have or None
    if response is not None:
        with response:
            if have and response.status != 206:
                have = 0  # server ignored the range: start over
            total = response.length + have if response.length is not None else None
            if have:
                log.info("%s: resuming at %d bytes", spec.filename, have)
            try:
                with open(part, "ab" if have else "wb") as out, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, desc=spec.filename) as bar:
                    while block := response.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
            except (OSError, http.client.HTTPException) as exc:
                raise CheckpointError(f"{spec.filename}: download from {url} broke off after "
                                      f"{part.stat().st_size} bytes ({type(exc).__name__})",
                                      hint=f"run the same command again: it resumes from {part}") from None
    check_download(spec, part, total)
    if spec.unpack:
        with zipfile.ZipFile(part) as zipped:
            tmp = root / (spec.filename + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            zipped.extractall(tmp)
            inner = tmp / spec.filename
            os.replace(inner if inner.is_dir() else tmp, target)
            shutil.rmtree(tmp, ignore_errors=True)
        part.unlink()
    else:
        os.replace(part, target)
    return target


def _download_error(spec: CheckpointSpec, url: str, target: Path, why: str) -> CheckpointError:
    return CheckpointError(f"cannot download {spec.filename} from {url}: {why}",
                           hint=f"behind a firewall, set {MIRROR_ENV} (or --checkpoint_mirror) to a server that "
                                f"has the file, or download it by hand and place it at {target}")
