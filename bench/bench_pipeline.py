"""End-to-end VideoReTalking speed: seconds of compute per second of output, per stage, peak memory.

    python bench/bench_pipeline.py [--frames 10] [--batch 1 8 16] [--enhancer gpen|none] [--device cpu|cuda]

Runs on the first frames of a sample clip with seeded weights (speed is what is
measured; seeded and official weights cost the same). Each batch size runs in a
fresh subprocess so peak RSS is per configuration. Writes bench/results/pipeline.md.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(frames: int, batch: int, enhancer: str, device: str, precision: str) -> None:
    import time

    sys.path.insert(0, str(REPO))
    from talkingface.config import load_config
    from talkingface.media import load_audio, read_video, write_video, write_wav
    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline
    from talkingface.weights.policy import choose_weights

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = read_video(REPO / "dataset/video-retalking/astronaut_a.mp4")
        write_video(tmp / "face.mp4", clip.frames[:frames], 25)
        write_wav(tmp / "a.wav", load_audio(REPO / "dataset/video-retalking/astronaut_b.wav")[: frames * 640])
        config = load_config("video_retalking", "video-retalking", (), {
            "weights": "seeded", "device": device, "batch_size": batch, "face_det_batch_size": batch,
            "enhancer": enhancer, "saved_dir": str(tmp / "saved"), "max_seconds": None, "precision": precision})
        weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
        start = time.perf_counter()
        pipe = VideoReTalkingPipeline.from_config(config, weights)
        load = time.perf_counter() - start
        start = time.perf_counter()
        pipe(face=tmp / "face.mp4", audio=tmp / "a.wav", outfile=tmp / "out.mp4")
        total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"load": load, "total": total, "stages": pipe.timings, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--enhancer", default="gpen")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.frames, args.batch[0], args.enhancer, args.device, args.precision)
        return
    rows = []
    for batch in args.batch:
        out = subprocess.run([sys.executable, __file__, "--child", "--frames", str(args.frames), "--batch", str(batch),
                              "--enhancer", args.enhancer, "--device", args.device, "--precision", args.precision],
                             capture_output=True, text=True, check=True)
        rows.append((batch, json.loads(out.stdout.strip().splitlines()[-1])))
    seconds = args.frames / 25
    lines = [f"# VideoReTalking pipeline ({args.frames} frames = {seconds:.2f} s of video, enhancer={args.enhancer}, "
             f"device={args.device}, precision={args.precision})", "",
             "Machine: 2-core CPU dev VM (shared with other jobs while measured), seeded weights, first run "
             "(no stage cache). `python bench/bench_pipeline.py " + " ".join(sys.argv[1:]) + "`", "",
             "| batch | s per output second | total s | model load s | peak RSS MB | slowest stages (s) |",
             "|---:|---:|---:|---:|---:|---|"]
    for batch, r in rows:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["stages"].items(), key=lambda kv: -kv[1])[:6])
        lines.append(f"| {batch} | {r['total'] / seconds:.1f} | {r['total']:.1f} | {r['load']:.1f} | "
                     f"{r['peak_mb']:.0f} | {stages} |")
    out = REPO / "bench" / "results" / f"pipeline-{args.device}-{args.enhancer}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
