"""The arithmetic floor of the official workload on this CPU: how far can fp32 go?

A network run at fp32 parity must do its multiply-adds; the fastest a core can
do them is its fp32 matrix-multiply rate. This script counts the FLOPs of one
call of each heavy network at the shapes the side-by-side benchmark uses
(torch.utils.flop_counter, seeded weights: FLOPs do not depend on the values),
multiplies by the calls of the side-by-side run, measures the core's fp32 peak
(a large single-thread sgemm, the best case for any conv backend), and writes:

* per network: GFLOP per call, calls, the measured CPU s (official and ours,
  from bench/results/official_side_by_side.json), the achieved GFLOP/s;
* the floor: the CPU seconds these networks need at peak, and the largest ratio
  to the official run that any fp32 implementation of the same work could show.

FFT and elementwise work is not counted (the floor is a lower bound).
``python bench/bench_roofline.py`` -> bench/results/roofline.md + .json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"

#: side-by-side name (ours) -> (official name, input builder key)
NETWORKS = {"ParseNet": "ParseNet", "FullGenerator": "FullGenerator", "GFPGANv1Clean": "GFPGANv1Clean",
            "ENet": "ENet", "DNet": "DNet"}


def sgemm_gflops(size: int = 2048, repeats: int = 7) -> float:
    """Best single-thread fp32 sgemm rate (torch.mm) of ``repeats`` calls: the core's practical fp32 peak."""
    import torch

    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        torch.mm(a, b)
        times.append(time.thread_time() - start)
    return 2 * size ** 3 / min(times) / 1e9


def nominal_gflops() -> float | None:
    """Clock x 64 fp32 FLOP per cycle (two AVX-512 FMA units): the most this core could ever do."""
    try:
        mhz = max(float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz"))
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration, ValueError):
        return None
    per_cycle = 64 if "avx512f" in flags else 32
    return mhz / 1e3 * per_cycle


def flops_per_call() -> dict[str, float]:
    """GFLOP of one call at the side-by-side shapes (E-Net and D-Net per frame: batch 1)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from talkingface.face.gfpgan import load_gfpgan
    from talkingface.face.gpen import load_gpen
    from talkingface.face.parsing import load_parsenet
    from talkingface.models.video_retalking.networks import build_networks

    g = torch.Generator().manual_seed(0)
    nets = build_networks("seeded", seed=0)
    face512 = torch.rand(1, 3, 512, 512, generator=g) * 2 - 1
    img = torch.rand(1, 6, 384, 384, generator=g)
    calls = {
        "ParseNet": lambda: load_parsenet(weights="seeded")(face512),
        "FullGenerator": lambda: load_gpen(weights="seeded")(face512),
        "GFPGANv1Clean": lambda: load_gfpgan(weights="seeded")(face512),
        "ENet": lambda: nets.enet(torch.rand(1, 1, 80, 16, generator=g), img, img[:, 3:],
                                  generator=torch.Generator().manual_seed(1)),
        "DNet": lambda: nets.dnet(torch.rand(1, 3, 256, 256, generator=g), torch.rand(1, 73, 27, generator=g)),
    }
    out = {}
    for name, call in calls.items():
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            call()
        out[name] = counter.get_total_flops() / 1e9
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    side = json.loads((RESULTS / "official_side_by_side.json").read_text())
    official, ours = side["official"], side["ours"]
    sgemm = sgemm_gflops()
    gflop = flops_per_call()
    rows = []
    for name, gf in gflop.items():
        # E-Net runs once per output frame, D-Net once per input frame, on both sides (batched differently)
        calls = official["output_frames"] if name == "ENet" else (side["frames"] if name == "DNet"
                                                                  else official["network_calls"].get(name, 0))
        o_s = official["networks_cpu_s"].get(name, 0.0)
        p_s = ours["networks_cpu_s"].get(name, 0.0)
        rows.append({"network": name, "gflop_per_call": gf, "calls": calls, "official_cpu_s": o_s,
                     "ours_cpu_s": p_s, "official_gflops": gf * calls / o_s if o_s else None,
                     "ours_gflops": gf * calls / p_s if p_s else None})
    # the fastest fp32 rate seen on this core: sgemm or a network's own (OpenVINO's convs beat torch.mm here)
    best = max([sgemm] + [r[k] for r in rows for k in ("official_gflops", "ours_gflops") if r[k]])
    nominal = nominal_gflops()
    for r in rows:
        r["floor_s"] = r["gflop_per_call"] * r["calls"] / best
        r["floor_nominal_s"] = r["gflop_per_call"] * r["calls"] / nominal if nominal else None
    floor_s = sum(r["floor_s"] for r in rows)
    floor_nominal = sum(r["floor_nominal_s"] for r in rows) if nominal else None
    result = {"sgemm_gflops_1thread": sgemm, "best_gflops": best, "nominal_gflops": nominal, "networks": rows,
              "floor_cpu_s": floor_s, "floor_nominal_cpu_s": floor_nominal,
              "official_cpu_s": official["cpu_s"], "ours_cpu_s": ours["cpu_s"],
              "max_ratio": official["cpu_s"] / floor_s,
              "max_ratio_nominal": official["cpu_s"] / floor_nominal if floor_nominal else None}
    (RESULTS / "roofline.json").write_text(json.dumps(result, indent=1))
    lines = ["# The fp32 floor of the official workload on this CPU", "",
             f"`python bench/bench_roofline.py` (FLOPs by torch.utils.flop_counter at the side-by-side shapes; "
             f"calls and CPU s from official_side_by_side.json; 1 thread).", "",
             f"Fastest fp32 rate seen on one core here: **{best:.0f} GFLOP/s** (best of: torch.mm 2048^3 sgemm "
             f"{sgemm:.0f}, and each network's own rate below); nominal ceiling {nominal or 0:.0f} GFLOP/s "
             "(clock x 64 FLOP/cycle, two AVX-512 FMA units).", "",
             "| network | GFLOP per call | calls | official CPU s (GFLOP/s) | ours CPU s (GFLOP/s) | CPU s at peak |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        def cell(s, rate):
            return f"{s:.1f} ({rate:.0f})" if rate else "-"
        lines.append(f"| {r['network']} | {r['gflop_per_call']:.1f} | {r['calls']} | "
                     f"{cell(r['official_cpu_s'], r['official_gflops'])} | {cell(r['ours_cpu_s'], r['ours_gflops'])} "
                     f"| {r['floor_s']:.1f} |")
    lines += ["", f"These networks need at least **{floor_s:.1f} CPU s** at the best rate seen "
              f"({floor_nominal or 0:.1f} at the nominal ceiling); the official run took {official['cpu_s']:.1f} CPU s "
              f"in all, so no fp32 implementation of the same work can be more than **{result['max_ratio']:.2f}x** "
              f"({result['max_ratio_nominal'] or 0:.2f}x at the nominal ceiling) faster here. FFTs, detectors, "
              "landmarks, OpenCV and I/O are not counted: the true ceiling is lower."]
    (RESULTS / "roofline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
