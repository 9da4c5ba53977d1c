"""Speed of the evaluation pieces (run by hand): python bench/bench_eval.py [--device cpu] [--threads N]

Writes bench/results/eval.md. Seeded weights: speed does not depend on the values.
Each figure is the median of several timed runs after one warm-up.
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from timing import median_seconds  # noqa: E402

from talkingface.evaluation.fid import frechet_distance, inception_features  # noqa: E402
from talkingface.evaluation.fidelity import psnr, ssim  # noqa: E402
from talkingface.evaluation.inception import load_inception  # noqa: E402
from talkingface.evaluation.lse import embed_windows, score_embeddings  # noqa: E402
from talkingface.evaluation.lse_crop import DlibDetector  # noqa: E402
from talkingface.evaluation.syncnet import load_syncnet, syncnet_mfcc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--machine", default="2-core CPU dev VM")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []

    net = load_syncnet(weights="seeded", device=args.device)
    windows = 20
    crops = rng.integers(0, 256, (windows + 4, 224, 224, 3), dtype=np.uint8)
    audio = rng.integers(-3000, 3000, (windows + 5) * 640, dtype=np.int16)
    mfcc = syncnet_mfcc(audio)
    t = median_seconds(lambda: embed_windows(net, crops, mfcc, windows, batch_size=20, device=args.device),
                       args.repeats)
    rows.append(("SyncNet lip+audio embeddings (batch 20)", f"{windows / t:.1f} windows/s", f"{t * 1000:.0f} ms / 20"))
    long_audio = rng.integers(-3000, 3000, 16000 * 10, dtype=np.int16)
    t = median_seconds(lambda: syncnet_mfcc(long_audio), args.repeats)
    rows.append(("MFCC (python_speech_features), 10 s audio", f"{10 / t:.0f}x real time", f"{t * 1000:.1f} ms"))
    lip, aud = torch.randn(250, 1024), torch.randn(250, 1024)
    t = median_seconds(lambda: score_embeddings(lip, aud, 15), args.repeats)
    rows.append(("offset search, 250 windows x 31 offsets", f"{250 / t:.0f} windows/s", f"{t * 1000:.1f} ms"))

    inception = load_inception(weights="seeded", device=args.device)
    images = list(rng.integers(0, 256, (16, 224, 224, 3), dtype=np.uint8))
    t = median_seconds(lambda: inception_features(inception, images, batch_size=16, device=args.device), args.repeats)
    rows.append(("Inception pool3 (224 crops -> 299, batch 16)", f"{16 / t:.1f} images/s", f"{t * 1000:.0f} ms / 16"))

    feats = rng.standard_normal((2100, 2048))
    mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
    t = median_seconds(lambda: frechet_distance(mu, sigma, mu + 0.1, sigma), 1)
    rows.append(("Frechet distance, 2048-d (scipy sqrtm)", f"{t:.1f} s per FID", "once per evaluation"))

    a = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    t = median_seconds(lambda: ssim(a, b), args.repeats * 3)
    rows.append(("SSIM 224x224 colour", f"{1 / t:.0f} frames/s", f"{t * 1000:.1f} ms"))
    t = median_seconds(lambda: psnr(a, b), args.repeats * 3)
    rows.append(("PSNR 224x224 colour", f"{1 / t:.0f} frames/s", f"{t * 1000:.2f} ms"))

    from skimage import data

    frame = data.astronaut()
    detector = DlibDetector()
    t = median_seconds(lambda: detector(frame), args.repeats * 3)
    rows.append(("dlib HOG face detection, 512x512 frame", f"{1 / t:.0f} frames/s", f"{t * 1000:.1f} ms"))

    lines = [
        "# Evaluation speed (bench/bench_eval.py)",
        "",
        f"Machine: {args.machine} ({platform.processor() or platform.machine()}), device `{args.device}`, "
        f"torch {torch.__version__}, {args.threads} thread(s). Median of {args.repeats} timed runs after a warm-up.",
        "",
        "| step | throughput | time |",
        "|---|---|---|",
        *[f"| {name} | {speed} | {when} |" for name, speed, when in rows],
        "",
        "The 2 cores are shared with other jobs: expect +-20% between runs.",
        "",
        "Reading: LSE cost is dominated by the SyncNet lip tower (one window per video frame);",
        "FID by Inception on every frame (`fid_frame_stride` trades frames for time) plus one",
        "2048-d matrix square root per evaluation.",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
