"""Batch throughput: items/hour in-process vs Ray with 1 and 2 workers, and Ray start-up overhead.

    python bench/bench_batch.py [--model identity|video_retalking] [--items 6] [--repeat 3]

Writes bench/results/batch.md. Uses the sample clips copied into an HDTF-style
folder; video_retalking runs with seeded weights (speed only, not quality).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_folder(root: Path, items: int) -> Path:
    clips = sorted((REPO / "dataset" / "video-retalking").glob("*.mp4"))
    for k in range(items):
        shutil.copy(clips[k % len(clips)], root / f"WRA_clip_{k:03d}.mp4")
    return root


def run_once(model: str, folder: Path, saved: Path, workers: int, seconds: float) -> float:
    from talkingface.cli import main
    from talkingface.distributed import shutdown

    start = time.perf_counter()
    code = main(["-m", model, "-d", "hdtf", f"--dataset_root={folder}", f"--saved_dir={saved}",
                 f"--num_workers={workers}", f"--max_seconds={seconds}", "--stage=generate", "--weights=seeded",
                 "--log_level=WARNING", "--resume=false", "--plots=false"])
    elapsed = time.perf_counter() - start
    shutdown()
    if code != 0:
        raise SystemExit(f"run failed with exit code {code}")
    return elapsed


def ray_startup() -> float:
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")

    @ray.remote
    def ping() -> int:
        return 1

    ray.get(ping.remote())
    elapsed = time.perf_counter() - start
    ray.shutdown()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="identity")
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    startup = [ray_startup() for _ in range(args.repeat)]
    rows.append(("Ray start-up (init + first task)", f"{statistics.median(startup):.2f} s", ""))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "clips").mkdir()
        folder = make_folder(Path(tmp) / "clips", args.items)
        for workers in (0, 1, 2):
            times = [run_once(args.model, folder, Path(tmp) / f"saved{workers}-{r}", workers, args.seconds)
                     for r in range(args.repeat)]
            med = statistics.median(times)
            label = "in-process" if workers == 0 else f"Ray, {workers} worker(s)"
            rows.append((label, f"{med:.2f} s for {args.items} items", f"{args.items / med * 3600:.0f} items/h"))
    out = REPO / "bench" / "results" / "batch.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Batch throughput ({args.model}, {args.items} items of {args.seconds:g} s, median of {args.repeat})",
             "", "Machine: 2-core CPU dev VM, no GPU. Command: `python bench/bench_batch.py "
             + " ".join(sys.argv[1:]) + "`", "", "| setup | time | throughput |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
