"""Per-frame CPU time of the face stack's heavy parts: 3DMM, parsing, GPEN, GFPGAN, paste-back.

Run by hand:  python bench/bench_face_restore.py [--threads 2] [--repeats 3] [--device cpu]

Every part runs at the official size (ReconNet 224, ParseNet / GPEN / GFPGAN 512)
with seeded-v1 weights (values do not change the cost). Whole-image restoration
(``FaceEnhancer.process``, ``GFPGANRestorer.enhance``) is timed on the bundled
astronaut image (512x512) with the face detector replaced by its precomputed
result, so detection (timed on its own row) is not counted twice. The
"geometry only" rows swap the networks for identity stand-ins: what remains is
the 5-point warp, masks and paste-back. Time = median of ``--repeats`` runs
after one untimed warm-up. Results go to bench/results/face_restore.md.
"""
from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from timing import median_seconds  # noqa: E402


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, int]:
    return median_seconds(fn, repeats), repeats


class _Identity(torch.nn.Module):
    """A restoration net that returns its input (keeps only the warp/paste cost)."""

    def __init__(self, size: int = 512) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "face_restore.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from skimage import data

    from talkingface.face import gfpgan, gpen, parsing, recon3d, restore
    from talkingface.face.dlib_detect import DlibFivePointDetector

    dev = args.device
    image = np.ascontiguousarray(data.astronaut())  # 512x512 RGB
    detector = DlibFivePointDetector()
    found = detector(image)
    fixed = lambda _img: found  # noqa: E731 - the detection result, replayed

    recon = recon3d.load_recon(weights="seeded", device=dev)
    parse_net = parsing.load_parsenet(weights="seeded", device=dev)
    gpen_net = gpen.load_gpen(weights="seeded", device=dev)
    gfpgan_net = gfpgan.load_gfpgan(weights="seeded", device=dev)
    lm3d = recon3d.seeded_lm3d()

    crop256 = np.ascontiguousarray(image[80:336, 140:396])  # face region, 256x256
    lm68 = np.tile(np.array([[128.0, 128.0]], np.float32), (68, 1))
    lm68[[36, 39]] = [[95, 110], [115, 110]]
    lm68[[42, 45]] = [[141, 110], [161, 110]]
    lm68[30], lm68[48], lm68[54] = [128, 140], [105, 170], [151, 170]
    face512 = np.ascontiguousarray(cv2.resize(crop256, (512, 512)))
    gfp_face, _ = restore.warp_and_crop_face(image, found[1][0], restore.FFHQ_TEMPLATE_512, 512)

    enhancer = restore.FaceEnhancer(gpen_net, parse_net, fixed, dev)
    restorer = restore.GFPGANRestorer(gfpgan_net, fixed, dev)
    enhancer_geo = restore.FaceEnhancer(_Identity(), parse_net, fixed, dev)
    restorer_geo = restore.GFPGANRestorer(_Identity(), fixed, dev)

    def count(net: torch.nn.Module) -> str:
        return f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f} M params"

    cases: list[tuple[str, str, Callable[[], object]]] = [
        ("3DMM: POS align 256 -> 224 (numpy/PIL)", "1 frame",
         lambda: recon3d.align_for_recon(crop256, lm68, lm3d)),
        ("3DMM: align + ReconNet, batch 1", f"1 frame, {count(recon)}",
         lambda: recon3d.coefficients(recon, crop256[None], lm68[None], lm3d, device=dev)),
        ("3DMM: align + ReconNet, batch 8 (per frame)", "8 frames / 8",
         lambda: recon3d.coefficients(recon, np.repeat(crop256[None], 8, 0), np.repeat(lm68[None], 8, 0), lm3d,
                                      device=dev, batch_size=8)),
        ("ParseNet 512: parse_mask of a 256 crop", count(parse_net),
         lambda: parsing.parse_mask(parse_net, crop256, parsing.FACE_CLASSES, device=dev)),
        ("GPEN-BFR-512: restore_face (net only)", count(gpen_net),
         lambda: gpen.restore_face(gpen_net, face512, dev)),
        ("GFPGANv1.3 512: restore_aligned (net only)", count(gfpgan_net),
         lambda: restorer.restore_aligned(gfp_face)),
        ("dlib 5-point face detection (real weights)", "512x512 frame",
         lambda: detector(image)),
        ("GPEN FaceEnhancer.process (warp+GPEN+parse+paste)", "512x512 frame, 1 face",
         lambda: enhancer.process(image, image, face_enhance=True, poisson_blending=False)),
        ("GPEN FaceEnhancer.process, Laplacian blend branch", "512x512 frame, 1 face, bbox",
         lambda: enhancer.process(image, image, bbox=(150, 330, 160, 340), face_enhance=False,
                                  poisson_blending=True)),
        ("  geometry only (GPEN = identity; parse kept)", "512x512 frame",
         lambda: enhancer_geo.process(image, image, face_enhance=True, poisson_blending=False)),
        ("GFPGANRestorer.enhance (warp+GFPGAN+soft paste)", "512x512 frame, centre face",
         lambda: restorer.enhance(image, only_center_face=True, paste_back=True)),
        ("  geometry only (GFPGAN = identity)", "512x512 frame",
         lambda: restorer_geo.enhance(image, only_center_face=True, paste_back=True)),
    ]
    rows = []
    for name, what, fn in cases:
        repeats = args.repeats
        median, runs = _timed(fn, repeats)
        if "batch 8" in name:
            median /= 8
        rows.append((name, what, median, runs))
        print(f"{name:55s} {median:8.3f} s", flush=True)

    lines = [
        "# Face stack: per-frame CPU time (3DMM, parsing, GPEN, GFPGAN, paste-back)",
        "",
        f"Machine: 2-core CPU dev VM ({platform.machine()}), shared with other jobs; torch {torch.__version__}, "
        f"{args.threads} threads, float32, `torch.inference_mode()`, device `{dev}`.",
        "Produced by `python bench/bench_face_restore.py`; seeded-v1 weights at the official sizes; time = median of "
        f"{args.repeats} runs after one untimed warm-up. Whole-image rows use the astronaut image (512x512) with the "
        "detector's result replayed (detection is its own row); \"geometry only\" rows replace the restoration net by "
        "an identity module.",
        "",
        "| part | input / size | median s per frame | runs |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {name.strip()} | {what} | {median:.3f} | {runs} |" for name, what, median, runs in rows]
    lines += [
        "",
        "Per output frame the pipeline runs GPEN FaceEnhancer once per reference frame (D-Net stage) and",
        "GFPGANRestorer + a mouth parse + the final FaceEnhancer blend (no GPEN, Laplacian branch) per output frame.",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
