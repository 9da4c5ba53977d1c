"""Forward time and peak memory of D-Net / L-Net / E-Net (and the mel front end) on CPU.

Run by hand:  python bench/bench_networks.py [--threads 2] [--cases dnet:1,dnet:16,...]
Each case runs in its own subprocess so ``ru_maxrss`` (the process peak RSS;
tracemalloc does not see torch allocations) measures that case alone:

* weights MB  = peak RSS after building the net - peak RSS after importing torch;
* forward MB  = peak RSS after the first forward - peak RSS before it (activations + workspace);
* time        = median wall time of the timed forwards (after that first one).

Weights are the modules' default init (values do not change the cost).
Results go to bench/results/networks.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = "mel:1,dnet:1,dnet:16,lnet:1,lnet:16,enet:1,enet:16"
REPEATS = {1: 5, 16: 2}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_case(name: str, batch: int, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from talkingface.models.video_retalking.networks import DNet, ENet, LNet

    base = _maxrss_mb()
    gen = torch.Generator().manual_seed(0)
    if name == "mel":
        from talkingface.media.mel import mel_chunks, melspectrogram

        wav = torch.randn(16000 * 10, generator=gen) * 0.1  # 10 s of audio
        def step():
            return mel_chunks(melspectrogram(wav), None, 25)
        built = _maxrss_mb()
        shape = "10 s @ 16 kHz -> (251, 80, 16) chunks at 25 fps"
    else:
        if name == "dnet":
            net = DNet().eval()
            args = (torch.rand(batch, 3, 256, 256, generator=gen) * 2 - 1, torch.randn(batch, 73, 26, generator=gen))
            shape = f"image ({batch},3,256,256), coeffs ({batch},73,26)"
        elif name == "lnet":
            net = LNet().eval()
            args = (torch.randn(batch, 1, 80, 16, generator=gen), torch.rand(batch, 6, 96, 96, generator=gen))
            shape = f"mel ({batch},1,80,16), face ({batch},6,96,96)"
        elif name == "enet":
            net = ENet().eval()
            face = torch.rand(batch, 6, 384, 384, generator=gen)
            args = (torch.randn(batch, 1, 80, 16, generator=gen), face, face[:, 3:])
            shape = f"mel ({batch},1,80,16), face ({batch},6,384,384), ref ({batch},3,384,384)"
        else:
            raise SystemExit(f"unknown case {name}")
        built = _maxrss_mb()

        def step():
            with torch.inference_mode():
                return net(*args)

    before = _maxrss_mb()
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    after = _maxrss_mb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"case": name, "batch": batch, "threads": threads, "shape": shape, "first_s": first,
            "median_s": statistics.median(times) if times else first, "runs": len(times) or 1,
            "weights_mb": built - base, "forward_mb": after - before, "peak_mb": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma list of name:batch")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "networks.md"))
    args = parser.parse_args()

    if args.one:
        name, batch = args.one.split(":")
        batch = int(batch)
        repeats = REPEATS.get(batch, 2) if name != "enet" or batch == 1 else 0  # ENet x16: measured once
        print(json.dumps(run_case(name, batch, args.threads, repeats)))
        return

    rows = []
    for case in args.cases.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", case, "--threads", str(args.threads)],
                              capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                                             "PATH": "/usr/bin:/bin"})
        if proc.returncode != 0:
            print(f"{case}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        per_item = row["median_s"] / row["batch"]
        print(f"{case:9s} median {row['median_s']:.3f} s ({per_item:.3f} s/item, {row['runs']} runs), "
              f"weights {row['weights_mb']:.0f} MB, forward +{row['forward_mb']:.0f} MB", flush=True)

    import torch

    lines = [
        "# VideoReTalking networks: CPU forward time and memory",
        "",
        f"Machine: 2-core CPU dev VM ({platform.processor() or platform.machine()}), shared with other jobs; "
        f"torch {torch.__version__}, {args.threads} threads, float32, `torch.inference_mode()`.",
        "Produced by `python bench/bench_networks.py`; one subprocess per case. Time = median of the timed",
        "forwards after a first (untimed) one; memory from `ru_maxrss` deltas (weights = after building the",
        "net, forward = growth during the first forward). ENet at batch 16 was timed once (its first forward).",
        "",
        "| case | batch | input | median s | s / item | runs | weights MB | forward +MB | peak RSS MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['batch']} | {r['shape']} | {r['median_s']:.3f} | "
                     f"{r['median_s'] / r['batch']:.3f} | {r['runs']} | {r['weights_mb']:.0f} | "
                     f"{r['forward_mb']:.0f} | {r['peak_mb']:.0f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
