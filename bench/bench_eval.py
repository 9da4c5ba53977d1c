"""Speed of the evaluation pieces (run by hand): python bench/bench_eval.py [--device cpu] [--threads N]

Writes bench/results/eval.md. Seeded weights: speed does not depend on the values.
Each figure is the median of several timed runs after one warm-up.

Face-track LSE against syncnet_python, in the same run (``--reference_tools``: the patched copy
made by scripts/parity/eval/prepare_reference.py, run with the reference environment's python):
per clip, the CPU time (user + system, every child process included: python, ffmpeg) of
syncnet_python's ``run_pipeline.py`` + Wav2Lip's ``calculate_scores_real_videos.py`` (what
``calculate_scores_real_videos.sh`` runs) and of ``python -m talkingface evaluate --metrics=lse``
with ``lse_protocol`` reference and direct. Both sides: one thread, dlib boxes (the fixture patch:
S3FD weights cannot be downloaded here; S3FD is the same network on both sides), the same SyncNet
file (``--reference_weights``, loaded by our official-file path). ``--skip_micro`` re-measures
only this section and keeps the rest of eval.md.
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
from talkingface.evaluation.lse_crop import make_detector  # noqa: E402
from talkingface.evaluation.syncnet import load_syncnet, syncnet_mfcc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--machine", default="2-core CPU dev VM")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval.md"))
    parser.add_argument("--reference_tools", default=None, help="patched syncnet_python copy (prepare_reference.py)")
    parser.add_argument("--reference_python", default="/work/refenv/bin/python")
    parser.add_argument("--reference_pythonpath", default="/work/refrun/lse/scenedetect051",
                        help="where scenedetect 0.5.1 is installed apart")
    parser.add_argument("--reference_weights", default=None, help="a syncnet_v2.model-layout file (seeded)")
    parser.add_argument("--clips", default=str(ROOT / "tests" / "fixtures" / "eval_reference" / "clips"))
    parser.add_argument("--min_track", type=int, default=50)
    parser.add_argument("--loops", type=int, default=4,
                        help="also score face30.mp4 looped this many times (a longer clip; 0: none)")
    parser.add_argument("--skip_micro", action="store_true", help="only the comparison with syncnet_python")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    comparison = lse_vs_reference(args) if args.reference_tools else []
    if args.skip_micro:
        old = out.read_text() if out.is_file() else ""
        micro = old.split(COMPARISON_MARK)[0].rstrip("\n").splitlines()
    else:
        micro = micro_benchmarks(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(micro + comparison) + "\n")
    print("\n".join(micro + comparison))


COMPARISON_MARK = "<!-- lse-vs-syncnet_python -->"


def _cpu_seconds(command: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float]:
    """(CPU seconds of the command and every process it started, wall seconds)."""
    import resource
    import subprocess
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def lse_vs_reference(args: argparse.Namespace) -> list[str]:
    import os
    import shutil
    import subprocess
    import tempfile

    tools = Path(args.reference_tools).resolve()
    clips = sorted(Path(args.clips).resolve().glob("*.mp4"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ref_env = {**env, "PYTHONPATH": args.reference_pythonpath}
    work = Path(tempfile.mkdtemp(prefix="bench-lse-"))
    if args.loops > 1 and (Path(args.clips) / "face30.mp4").is_file():
        looped = work / f"face30x{args.loops}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(args.loops - 1),
                        "-i", str(Path(args.clips) / "face30.mp4"), "-c:v", "libx264", "-crf", "20", "-c:a", "aac",
                        str(looped)], check=True)
        clips.append(looped)
    ckpt = work / "ckpt"
    ckpt.mkdir()
    shutil.copy(args.reference_weights, ckpt / "syncnet_v2.model")
    rows = []
    totals = {"reference tools": 0.0, "reference": 0.0, "direct": 0.0}
    for clip in clips:
        frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                 "stream=nb_read_frames,r_frame_rate", "-of", "csv=p=0", str(clip)],
                                stdout=subprocess.PIPE, text=True).stdout.strip()
        common = ["--videofile", str(clip), "--reference", clip.stem, "--data_dir", str(work / "ref")]
        pipeline, wall1 = _cpu_seconds([args.reference_python, "run_pipeline.py", *common,
                                        "--min_track", str(args.min_track)], ref_env, tools)
        scores, wall2 = _cpu_seconds([args.reference_python, "calculate_scores_real_videos.py", "--initial_model",
                                      str(ckpt / "syncnet_v2.model"), *common], ref_env, tools)
        ref_cpu, ref_wall = pipeline + scores, wall1 + wall2
        mine = {}
        for protocol in ("reference", "direct"):
            mine[protocol] = _cpu_seconds(
                [sys.executable, "-m", "talkingface", "evaluate", f"--generated={clip}", "--metrics=lse",
                 f"--lse_protocol={protocol}", "--lse_detector=dlib", f"--lse_min_track={args.min_track}",
                 "--weights=official", f"--checkpoint_dir={ckpt}", "--plots=false", "--num_threads=1",
                 "--resume=false", f"--out={work / ('ours-' + protocol + '-' + clip.stem)}"], env, ROOT)
        totals["reference tools"] += ref_cpu
        totals["reference"] += mine["reference"][0]
        totals["direct"] += mine["direct"][0]
        rows.append(f"| {clip.name} ({frames.replace(',', ' fps, ')} frames) | {ref_cpu:.1f} ({ref_wall:.1f}) | "
                    f"{mine['reference'][0]:.1f} ({mine['reference'][1]:.1f}) | "
                    f"{mine['direct'][0]:.1f} ({mine['direct'][1]:.1f}) | "
                    f"{ref_cpu / mine['reference'][0]:.2f}x | {ref_cpu / mine['direct'][0]:.2f}x |")
    shutil.rmtree(work, ignore_errors=True)
    ref = totals["reference tools"]
    return [
        "",
        COMPARISON_MARK,
        "## Face-track LSE: this package vs syncnet_python (same run)",
        "",
        f"Command: `python bench/bench_eval.py --skip_micro --reference_tools {args.reference_tools} "
        f"--reference_weights {args.reference_weights}`. CPU seconds (user + system of every process, ffmpeg "
        "included), wall seconds in brackets; one thread each side, dlib boxes, seeded SyncNet from the same "
        f"file, `min_track` {args.min_track}. Whole commands: process start, imports and model loading included "
        f"(part of the saving on short clips: the tools start two python processes per clip); "
        f"face30x{args.loops}.mp4 is face30.mp4 looped {args.loops} times (made by the script).",
        "",
        "| clip | syncnet_python (run_pipeline + calculate_scores) | ours, lse_protocol=reference | "
        "ours, direct | speed-up (reference) | speed-up (direct) |",
        "|---|---|---|---|---|---|",
        *rows,
        f"| **all clips** | {ref:.1f} | {totals['reference']:.1f} | {totals['direct']:.1f} | "
        f"**{ref / totals['reference']:.2f}x** | **{ref / totals['direct']:.2f}x** |",
    ]


def micro_benchmarks(args: argparse.Namespace) -> list[str]:
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
    detector = make_detector("dlib")
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
    return lines


if __name__ == "__main__":
    main()
