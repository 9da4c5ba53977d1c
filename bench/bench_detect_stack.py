"""Detector calls end to end (network + decode + NMS) before / after this branch's defaults, 1 thread.

    python bench/bench_detect_stack.py [--repeats 3] [--old-nms PATH]

"before": eager torch and the torch NMS loop (``--old-nms``: a copy of face/nms.py before the numpy loop,
e.g. ``git show 4cae1d1:talkingface/face/nms.py > /tmp/nms_old.py``); "after": ``cpu_backend: auto`` and
the numpy NMS. Seeded-v1 weights, 256 px frames of the sample clip (the side-by-side bench's shapes).
Process CPU s per call, median of ``--repeats`` after a warm-up, interleaved; answers compared.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
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
    parser.add_argument("--old-nms", required=True)
    args = parser.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from talkingface.accel import AccelOptions, accelerate
    from talkingface.face import load_net, retinaface, s3fd
    from talkingface.media import read_video

    spec = importlib.util.spec_from_file_location("nms_old", args.old_nms)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    new_nms = s3fd.nms
    frames = np.asarray(read_video(REPO / "dataset/video-retalking/astronaut_a.mp4").frames[:4])
    cache = tempfile.mkdtemp()
    opts = AccelOptions(accel_cache_dir=cache)
    s3 = load_net(s3fd.S3FD(), name="s3fd", weights="seeded")
    rf = load_net(retinaface.RetinaFace(), name="retinaface", weights="seeded")
    fast_s3 = accelerate(copy.deepcopy(s3), opts, "S3FD")
    fast_rf = accelerate(copy.deepcopy(rf), opts, "RetinaFace")
    cases = {
        "S3FD BGR batch 1 (FAN's)": lambda net: s3fd.S3FDDetector(net, channel_order="bgr",
                                                                 decode_dtype=torch.float64).faces(frames[:1], 1),
        "S3FD RGB batch 2 (L-Net boxes)": lambda net: s3fd.S3FDDetector(net, channel_order="rgb").faces(frames[:2], 2),
        "RetinaFace GPEN": lambda net: [retinaface.RetinaFaceDetector(net).detect(frames[0])[0]],
        "RetinaFace facexlib": lambda net: [retinaface.RetinaFaceDetector(net, **retinaface.FACEXLIB_OPTIONS)
                                            .detect(frames[0])[0]],
    }

    def use(nms):
        s3fd.nms = retinaface.nms = nms

    print(f"threads 1, seeded-v1, 256 px, median of {args.repeats}; CPU s per call", flush=True)
    print("| detector call | before (eager + torch NMS) | after (default) | speed-up | boxes equal to |")
    print("|---|---:|---:|---:|---:|")
    for name, call in cases.items():
        nets = {"before": (s3 if "S3FD" in name else rf, old.nms), "after": (fast_s3 if "S3FD" in name else fast_rf,
                                                                             new_nms)}
        answers, times = {}, {k: [] for k in nets}
        for k, (net, nms) in nets.items():
            use(nms)
            answers[k] = call(net)  # warm-up (and the export of a new shape)
        for _ in range(args.repeats):
            for k, (net, nms) in nets.items():
                use(nms)
                start = time.process_time()
                call(net)
                times[k].append(time.process_time() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        diffs = []
        for a, b in zip(answers["before"], answers["after"]):
            assert a.shape == b.shape, (name, a.shape, b.shape)
            near = np.all(np.abs(a[:, :4]) <= 512, axis=1)
            diffs.append(float(np.abs(a[near] - b[near]).max()) if near.any() else 0.0)
        print(f"| {name} | {med['before']:.3f} | {med['after']:.3f} | {med['before'] / med['after']:.2f}x | "
              f"{max(diffs):.1e} px (on-frame boxes) |", flush=True)


if __name__ == "__main__":
    main()
