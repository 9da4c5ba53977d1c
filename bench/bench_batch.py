"""Batch throughput: items/hour in-process vs Ray with 1 and 2 workers, and Ray start-up overhead.

    python bench/bench_batch.py --model identity --items 6 --seconds 2 --repeat 3
    python bench/bench_batch.py --model video_retalking --items 4 --seconds 0.2 --workers 2 --repeat 1
    python bench/bench_batch.py --stage evaluate --items 4 --seconds 0.6 --workers 0,1,2

``--stage generate`` times the generate stage of ``--model``; ``--stage
evaluate`` times the evaluate stage (LSE with dlib face tracks, FID, PSNR/SSIM,
seeded weights) of a run generated once beforehand with ``identity`` (not
timed), each timed run on a fresh copy of it without stored scores.

Items are the sample clips (dataset/video-retalking); beyond the three of them,
copies shifted sideways by a few pixels, so that no item is a byte copy of
another (the VideoReTalking stage cache is keyed by file content and would
otherwise skip work). Weights are seeded: speed only, not quality.

Every timed run is appended to bench/results/batch_runs.json (so one setting can
be measured in several shorter invocations); bench/results/batch.md is rewritten
from all recorded runs: per setting the median, the number of runs, items/hour
(text below the notes marker in batch.md is kept). ``--reset`` forgets the recorded runs of
the settings measured now.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"
RUNS = RESULTS / "batch_runs.json"
EVAL_ARGS = ["--metrics=lse,fid,psnr,ssim", "--lse_crop=face", "--lse_detector=dlib", "--lse_min_track=10",
             "--fid_crop=face", "--fidelity_crop=face"]


def make_folder(root: Path, items: int) -> Path:
    """``items`` distinct clips in an HDTF-style folder (WRA_*.mp4)."""
    import numpy as np

    from talkingface.media import load_audio, read_video
    from talkingface.media.video import write_video

    clips = sorted((REPO / "dataset" / "video-retalking").glob("*.mp4"))
    root.mkdir(parents=True, exist_ok=True)
    for k in range(items):
        source, shift = clips[k % len(clips)], 4 * (k // len(clips))
        target = root / f"WRA_clip_{k:03d}.mp4"
        if shift == 0:
            shutil.copy(source, target)
            continue
        clip = read_video(source, 25.0)
        write_video(target, np.roll(clip.frames, shift, axis=2), 25.0, load_audio(source, 16000), 16000)
    return root


def _main(argv: list[str]) -> None:
    from talkingface.cli import main
    from talkingface.run.fanout import shutdown

    try:
        code = main(argv)
    finally:
        shutdown()
    if code != 0:
        raise SystemExit(f"run failed with exit code {code}: {' '.join(argv)}")


def common_args(folder: Path, seconds: float) -> list[str]:
    return ["-d", "hdtf", f"--dataset_root={folder}", f"--max_seconds={seconds}", "--weights=seeded",
            "--log_level=WARNING", "--plots=false"]


def time_generate(model: str, folder: Path, saved: Path, workers: int, seconds: float) -> float:
    start = time.perf_counter()
    _main(["-m", model, *common_args(folder, seconds), f"--saved_dir={saved}", f"--num_workers={workers}",
           "--stage=generate", "--resume=false"])
    return time.perf_counter() - start


def generated_run(folder: Path, saved: Path, seconds: float) -> Path:
    _main(["-m", "identity", *common_args(folder, seconds), f"--saved_dir={saved}", "--stage=generate",
           "--pairing=paired", *EVAL_ARGS])
    (run_dir,) = saved.iterdir()
    return run_dir


def time_evaluate(source_run: Path, folder: Path, work: Path, workers: int, seconds: float) -> float:
    run_dir = work / "run"
    shutil.copytree(source_run, run_dir, ignore=shutil.ignore_patterns("scores", "results.*", "plots"))
    start = time.perf_counter()
    _main(["-m", "identity", *common_args(folder, seconds), f"--saved_dir={work}", f"--run_dir={run_dir}",
           "--stage=evaluate", "--pairing=paired", f"--num_workers={workers}", *EVAL_ARGS])
    return time.perf_counter() - start


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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:
        gpu = "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {gpu}"


def load_runs() -> list[dict]:
    try:
        return json.loads(RUNS.read_text())
    except (OSError, ValueError):
        return []


def setting_key(run: dict) -> tuple:
    return (run["what"], run.get("items"), run.get("seconds"), run.get("workers"), run.get("threads"))


def render(runs: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(setting_key(run), []).append(run)
    lines = ["# Batch throughput", "",
             "Written by `bench/bench_batch.py` from the runs recorded in `batch_runs.json` (medians; n = runs).",
             "Weights are seeded (speed only). Ray workers run one torch thread each; in-process runs use",
             "torch's default (all cores) unless a thread count is given. Wall time of the whole command: Ray",
             "start-up, model / metric network loading per worker, and the driver's aggregate (FID) included.", ""]
    machines = sorted({run.get("machine", "?") for run in runs})
    lines += [f"Machine: {m}" for m in machines]
    lines += ["", "| what | items | setup | median time | n | items/hour | load avg (1 min) at start |",
              "|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0] != "ray start-up", k[0], k[1] or 0, k[2] or 0, k[3] or 0,
                                             k[4] or 0)):
        rows = groups[key]
        times = [r["time"] for r in rows]
        med = statistics.median(times)
        what, items, seconds, workers, threads = key
        loads = ", ".join(f"{r['load']:.1f}" for r in rows if r.get("load") is not None)
        if what == "ray start-up":
            lines.append(f"| Ray start-up (init + first task) | | | {med:.2f} s | {len(rows)} | | {loads} |")
            continue
        setup = "in-process" if workers == 0 else f"Ray, {workers} worker{'s' if workers > 1 else ''}"
        if workers == 0:
            setup += f", {threads} torch thread{'s' if threads != 1 else ''}" if threads else ", default threads"
        lines.append(f"| {what} | {items} x {seconds:g} s | {setup} | {med:.1f} s | {len(rows)} | "
                     f"{items / med * 3600:.0f} | {loads} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="identity")
    parser.add_argument("--stage", choices=("generate", "evaluate"), default="generate")
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="max_seconds of each item")
    parser.add_argument("--workers", default="0,1,2", help="settings to time: 0 = in-process, N = N Ray workers")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--startup", type=int, default=0, help="also time Ray start-up this many times")
    parser.add_argument("--reset", action="store_true", help="forget recorded runs of the settings timed now")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of this process (in-process runs, the driver); default: torch's")
    args = parser.parse_args()
    what = f"generate {args.model}" if args.stage == "generate" else "evaluate lse,fid,psnr,ssim"
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    runs = load_runs()
    if args.reset:
        now = {(what, args.items, args.seconds, w, args.threads if w == 0 else None) for w in workers}
        if args.startup:
            now.add(("ray start-up", None, None, None, None))
        runs = [r for r in runs if setting_key(r) not in now]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    base = {"machine": machine(), "commit": _commit(), "command": " ".join(sys.argv[1:])}

    def record(entry: dict) -> None:
        runs.append({**base, "date": dt.datetime.now().isoformat(timespec="seconds"), **entry})
        RUNS.parent.mkdir(parents=True, exist_ok=True)
        RUNS.write_text(json.dumps(runs, indent=1) + "\n")
        print(json.dumps(runs[-1]), flush=True)

    for _ in range(args.startup):
        load = os.getloadavg()[0]
        record({"what": "ray start-up", "items": None, "seconds": None, "workers": None, "threads": None,
                "time": ray_startup(), "load": load})
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "clips", args.items)
        source = generated_run(folder, Path(tmp) / "source", args.seconds) if args.stage == "evaluate" else None
        for r in range(args.repeat):
            for w in workers:
                work = Path(tmp) / f"w{w}-{r}"
                load = os.getloadavg()[0]
                if args.stage == "generate":
                    elapsed = time_generate(args.model, folder, work, w, args.seconds)
                else:
                    elapsed = time_evaluate(source, folder, work, w, args.seconds)
                shutil.rmtree(work, ignore_errors=True)
                record({"what": what, "items": args.items, "seconds": args.seconds, "workers": w,
                        "threads": args.threads if w == 0 else None, "time": round(elapsed, 2), "load": load})
    write_markdown(runs)
    print(render(runs))


NOTES = "<!-- notes: kept when the table above is rewritten -->"


def write_markdown(runs: list[dict]) -> None:
    """batch.md: the table from ``runs``, then whatever follows the notes marker of the current file."""
    path = RESULTS / "batch.md"
    try:
        old = path.read_text()
    except OSError:
        old = ""
    notes = old[old.index(NOTES):] if NOTES in old else NOTES + "\n"
    path.write_text(render(runs) + "\n" + notes)


def _commit() -> str:
    try:
        import subprocess

        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
