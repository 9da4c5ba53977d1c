"""The pipeline's E-Net and D-Net calls (batch 4), eager torch vs ``cpu_backend: auto``, interleaved.

    python bench/bench_enet_call.py [--repeats 3] [--threads 1]

Builds the seeded-v1 networks twice the way parts.py does (``accelerate`` with
``cpu_backend: torch``, and with the default ``auto``: the E-Net's head and the
D-Net on OpenVINO when installed), then times one call of each per round
(process CPU seconds, median after a warm-up that also exports / verifies).
The E-Net call is the whole one (L-Net in torch + head), with the noise drawn
before the call as parts.py does. Prints a Markdown table (pasted into
bench/results/onnx_backends.md).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from talkingface.accel import AccelOptions, accelerate
    from talkingface.models.video_retalking.networks import build_networks

    nets = build_networks("seeded", seed=0)
    cache = tempfile.mkdtemp()
    auto = AccelOptions(device="cpu", accel_cache_dir=cache)
    eager = dataclasses.replace(auto, cpu_backend="torch")
    g = torch.Generator().manual_seed(0)
    mel, img = torch.randn(4, 1, 80, 16, generator=g), torch.rand(4, 6, 384, 384, generator=g)
    src, drive = torch.rand(4, 3, 256, 256, generator=g) * 2 - 1, torch.randn(4, 73, 26, generator=g)
    calls, outs = {}, {}
    for label, opts in (("eager torch", eager), ("cpu_backend auto", auto)):
        enet, dnet = copy.deepcopy(nets.enet), copy.deepcopy(nets.dnet)
        accelerate(enet, dataclasses.replace(opts, cpu_backend="torch"), "ENet")
        accelerate(enet.head, opts, "ENetHead")
        accelerate(dnet, opts, "DNet")

        def enet_call(enet=enet):
            noise = enet.draw_noise(4, torch.Generator().manual_seed(1))
            with torch.inference_mode():
                return enet(mel, img, img[:, 3:], *noise)[0]

        def dnet_call(dnet=dnet):
            with torch.inference_mode():
                return dnet(src, drive)["fake_image"]
        calls[("L-Net + E-Net", label)], calls[("D-Net", label)] = enet_call, dnet_call
        outs[("L-Net + E-Net", label)], outs[("D-Net", label)] = enet_call(), dnet_call()  # warm-up / export
    times = {key: [] for key in calls}
    for _ in range(args.repeats):
        for key, fn in calls.items():
            start = time.process_time()
            fn()
            times[key].append(time.process_time() - start)
    lines = ["| call (batch 4) | runtime | CPU s per call | speed-up | max abs diff |", "|---|---|---:|---:|---:|"]
    for net in ("L-Net + E-Net", "D-Net"):
        base = statistics.median(times[(net, "eager torch")])
        for label in ("eager torch", "cpu_backend auto"):
            t = statistics.median(times[(net, label)])
            diff = float((outs[(net, label)] - outs[(net, "eager torch")]).abs().max())
            lines.append(f"| {net} | {label} | {t:.2f} | {base / t:.2f}x | {diff:.1e} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
