"""GPU throughput of the pipeline on a 720p clip: output frames per second, seconds per output second per stage.

    python bench/bench_gpu.py [--device cuda] [--height 720] [--frames 50] [--batch 16] [--out bench/results]

Seeded weights, full workload (bench/workload.py: substituted real detections;
on the device composer ParseNet runs batched and its labels are used, which
costs the same as real labels). Where dlib is not installed (the lent GPU
machine), bench/replay_dlib stands in for it with real dlib results recorded
on the dev machine; real dlib is CPU work, its recorded CPU cost per call is
reported beside the GPU figures. Two configurations run on the same clip,
each after a warm-up run on a short clip:

* ``baseline``: how a per-frame port runs: fp32, NCHW, batch 1, compose in OpenCV on the CPU;
* ``fast``: the CUDA path: fp16 autocast (fp32 FFTs), channels_last, batch ``--batch``,
  compose batched on the device (``compose_on_device``).

Reported per configuration: wall seconds per stage (first run, no stage cache:
every video-only stage included), output fps, and the PSNR of the ``fast``
output frames against the ``baseline`` ones (the cost of fp16 + device ops).
Also S3FD's forward on 720p frames (the face-box network official weights
would run; seeded runs use dlib boxes). Writes <out>/gpu.md + gpu.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
try:
    if os.environ.get("BENCH_DLIB_REPLAY"):
        raise ImportError("replay asked for")
    import dlib  # noqa: F401
    DLIB = "real dlib"
except ImportError:
    sys.path.insert(0, str(REPO / "bench" / "replay_dlib"))
    DLIB = "bench/replay_dlib (recorded real dlib results; dlib CPU cost not counted, see dlib_cpu_seconds)"

CONFIGS = {
    "baseline": {"precision": "fp32", "channels_last": "false", "compose_on_device": "false", "batch": 1},
    "fast": {"precision": "auto", "channels_last": "auto", "compose_on_device": "true", "batch": None},
}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_config(name: str, settings: dict, device: str, batch: int, clip: tuple[Path, Path], warm: tuple[Path, Path],
               tmp: Path) -> dict:
    import numpy as np
    import torch
    import workload

    from talkingface.config import load_config
    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline
    from talkingface.weights.policy import choose_weights

    b = settings["batch"] or batch
    values = {"weights": "seeded", "device": device, "saved_dir": str(tmp / name), "max_seconds": None,
              "batch_size": b, "face_det_batch_size": b, "precision": settings["precision"],
              "channels_last": settings["channels_last"], "compose_on_device": settings["compose_on_device"]}
    config = load_config("video_retalking", "video-retalking", (), values)
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    torch.backends.cudnn.benchmark = name != "baseline"
    start = time.perf_counter()
    pipe = VideoReTalkingPipeline.from_config(config, weights)
    frames, _ = pipe.read(clip[0])
    crops = np.zeros((1, 256, 256, 3), np.uint8)
    pipe.parts.crop(frames.head(1) if hasattr(frames, "head") else frames[:1], crops)
    subs = workload.install(pipe, frames, crops)
    if pipe.parts.compose_batch is not None:
        pipe.parts.compose_batch.parse_net = subs["parse_net"]  # batched ParseNet on the device
    load_s = time.perf_counter() - start
    pipe(face=warm[0], audio=warm[1], outfile=tmp / f"{name}-warm.mp4")  # cuDNN / allocator warm-up
    sync(device)
    pipe.options.re_preprocess = True
    out = tmp / f"{name}.mp4"
    start = time.perf_counter()
    pipe(face=clip[0], audio=clip[1], outfile=out)
    sync(device)
    wall = time.perf_counter() - start
    n = pipe.last_output_frames
    stages = dict(pipe.timings)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
    del pipe
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return {"settings": {**settings, "batch": b}, "wall_s": wall, "frames": n, "fps": n / wall,
            "s_per_output_s": wall / (n / 25), "stages_s": stages, "load_s": load_s, "peak_gpu_mb": peak,
            "video": str(out)}


def s3fd_forward(device: str, height: int, batch: int) -> dict:
    import torch

    from talkingface.face.s3fd import S3FD

    net = S3FD().eval().to(device)
    width = int(round(height * 16 / 9)) // 2 * 2
    x = torch.rand(batch, 3, height, width, device=device) * 255
    with torch.inference_mode():
        for _ in range(2):
            net(x)
        sync(device)
        start = time.perf_counter()
        for _ in range(3):
            net(x)
        sync(device)
    per_frame = (time.perf_counter() - start) / 3 / batch
    return {"batch": batch, "s_per_frame": per_frame, "fps": 1 / per_frame}


def psnr(a: Path, b: Path) -> float:
    import numpy as np

    from talkingface.media import read_video

    x = np.asarray(read_video(a).frames, np.float64)
    y = np.asarray(read_video(b).frames, np.float64)
    n = min(len(x), len(y))
    mse = float(np.mean((x[:n] - y[:n]) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--configs", default="baseline,fast")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    import torch

    from profile_pipeline import make_clip

    results: dict = {"device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device,
                     "torch": torch.__version__, "height": args.height, "frames": args.frames, "dlib": DLIB}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clip").mkdir()
        (tmp / "warm").mkdir()
        clip = make_clip(tmp / "clip", args.frames, args.height)
        warm = make_clip(tmp / "warm", min(args.frames, 2 * args.batch), args.height)
        for name in args.configs.split(","):
            print(f"== {name}", flush=True)
            try:
                r = run_config(name, CONFIGS[name], args.device, args.batch, clip, warm, tmp)
            except Exception as exc:  # report what ran; the other configuration may still work
                import traceback

                traceback.print_exc()
                r = {"error": f"{type(exc).__name__}: {exc}"[:400]}
            results[name] = r
            print(json.dumps(r, indent=1), flush=True)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "gpu.partial.json").write_text(json.dumps(results, indent=1))  # survives a kill
        if "video" in results.get("baseline", {}) and "video" in results.get("fast", {}):
            results["psnr_fast_vs_baseline_db"] = psnr(Path(results["baseline"]["video"]), Path(results["fast"]["video"]))
    try:
        results["s3fd_720p"] = s3fd_forward(args.device, args.height, args.batch)
    except Exception as exc:
        results["s3fd_720p"] = {"error": str(exc)[:300]}
    rec = REPO / "bench" / "replay_dlib" / "recording.json"
    if rec.exists():
        results["dlib_cpu_seconds"] = json.loads(rec.read_text())["dlib_cpu_seconds"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(results, indent=1))
    (out / "gpu.md").write_text(render(results, " ".join(sys.argv[1:])))
    print(render(results, " ".join(sys.argv[1:])))


def render(r: dict, argv: str) -> str:
    lines = [f"# GPU pipeline: {r['frames']} frames of {r['height']}p on {r['device']} (torch {r['torch']})", "",
             f"`python bench/bench_gpu.py {argv}`  ", f"Seeded weights, full workload; dlib: {r['dlib']}. "
             "First run of the clip (no stage cache): every stage, the video-only ones included, after a "
             "warm-up run on a short clip.", ""]
    names = [n for n in CONFIGS if n in r and "wall_s" in r[n]]
    if names:
        lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        lines.append("| settings | " + " | ".join(
            ", ".join(f"{k}={v}" for k, v in r[n]["settings"].items()) for n in names) + " |")
        lines.append("| **output fps** | " + " | ".join(f"**{r[n]['fps']:.1f}**" for n in names) + " |")
        lines.append("| s per output second | " + " | ".join(f"{r[n]['s_per_output_s']:.2f}" for n in names) + " |")
        lines.append("| wall s | " + " | ".join(f"{r[n]['wall_s']:.1f}" for n in names) + " |")
        lines.append("| peak GPU MB | " + " | ".join(f"{r[n]['peak_gpu_mb']:.0f}" for n in names) + " |")
        stages = sorted({s for n in names for s in r[n]["stages_s"]},
                        key=lambda s: -max(r[n]["stages_s"].get(s, 0) for n in names))
        for s in stages:
            lines.append(f"| {s} (s per output s) | " + " | ".join(
                f"{r[n]['stages_s'].get(s, 0) / (r[n]['frames'] / 25):.3f}" for n in names) + " |")
    for n in CONFIGS:
        if n in r and "error" in r[n]:
            lines.append(f"\n{n}: failed: {r[n]['error']}")
    if "psnr_fast_vs_baseline_db" in r:
        lines.append(f"\nPSNR of the fast output frames against the baseline's: {r['psnr_fast_vs_baseline_db']:.1f} dB.")
    if "s3fd_720p" in r and "fps" in r["s3fd_720p"]:
        lines.append(f"S3FD forward on {r['height']}p at batch {r['s3fd_720p']['batch']}: "
                     f"{r['s3fd_720p']['fps']:.0f} frames/s (not in the seeded run, which uses dlib boxes).")
    if "dlib_cpu_seconds" in r:
        lines.append("Real dlib CPU seconds per call on the dev machine (replayed here, not counted): "
                     + json.dumps(r["dlib_cpu_seconds"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
