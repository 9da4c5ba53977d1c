"""Face detectors and landmarks on eager torch vs ONNX Runtime vs OpenVINO (f32): per-call CPU s and parity.

    python bench/bench_detect_backends.py [--threads 1] [--repeats 3] [--nets s3fd,retinaface,fan]

Each network (seeded-v1 weights) runs through the project's own accel layer
(``accelerate`` with ``cpu_backend: onnxruntime`` / ``openvino``, a fresh
``accel_cache_dir``), at the input shapes the side-by-side bench gives it
(bench/workload.py on the sample clip: 512 px frames and crops). Reported per
shape:

* first call with an empty cache: export (TorchScript, opset 17) + the eager
  parity check + compile, CPU and wall seconds (what a user's first run pays
  per distinct input shape); and a later build from the cache (a new process
  loading the verified ONNX file, OpenVINO's compiled blob);
* process CPU seconds per call, median of ``--repeats`` after a warm-up, eager
  and backends interleaved (the 2 cores are shared with other jobs);
* parity: max abs difference of the raw network outputs, and of the detector's
  final answer (boxes + scores / five points, or FAN's 68 landmarks in pixels).

Writes bench/results/detect_backends.json; the table is copied by hand into
bench/results/onnx_backends.md.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", default="s3fd,retinaface,fan")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="256", help="frame sizes (px); the bench's sample clip is 256")
    parser.add_argument("--out", default=str(REPO / "bench/results/detect_backends.json"))
    args = parser.parse_args()
    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from talkingface.accel import AccelOptions, accelerate
    from talkingface.face import load_net
    from talkingface.face.fan import center_scale, crop_face, heatmap_peaks, load_fan, to_image
    from talkingface.face.retinaface import FACEXLIB_OPTIONS, RetinaFace, RetinaFaceDetector
    from talkingface.face.s3fd import S3FD, S3FDDetector
    from talkingface.media import read_video

    frames = np.asarray(read_video(REPO / "dataset/video-retalking/astronaut_a.mp4").frames[:12])
    sizes = [int(v) for v in args.sizes.split(",")]
    resized = {n: np.stack([cv2.resize(f, (n, n), interpolation=cv2.INTER_CUBIC) if f.shape[0] != n else f
                            for f in frames]) for n in sizes}

    def fan_job(images: np.ndarray) -> tuple[torch.Tensor, list]:
        geo = []
        for image in images:
            n = image.shape[0] / 512  # a face box of the sample clip's size
            centre, scale = center_scale(np.array([150.0 * n, 120.0 * n, 370.0 * n, 400.0 * n, 1.0]))
            geo.append((centre, scale, crop_face(image, centre, scale)))
        x = torch.from_numpy(np.stack([g[2] for g in geo])).permute(0, 3, 1, 2).float().div(255.0)
        return x, geo

    def fan_points(net, x, geo) -> np.ndarray:
        with torch.inference_mode():
            peaks = heatmap_peaks(net(x).float().numpy())
        return np.stack([to_image(p, c, s) for p, (c, s, _) in zip(peaks, geo)])

    cases = []  # name, network factory, raw input, final-answer function(net) -> array
    for size in sizes:
        frame512 = resized[size]
        if "s3fd" in args.nets:
            for batch, order in ((1, "bgr"), (2, "rgb")):
                def s3fd_final(net, batch=batch, order=order, frame512=frame512):
                    det = S3FDDetector(net, channel_order=order,
                                       decode_dtype=torch.float64 if order == "bgr" else torch.float32)
                    found = det.faces(frame512[:batch], batch)
                    return np.concatenate(found) if found else np.zeros((0, 5))
                det0 = S3FDDetector(S3FD(), channel_order=order)
                cases.append((f"S3FD {order} batch {batch} at {size}",
                              lambda: load_net(S3FD(), name="s3fd", weights="seeded"),
                              det0._input(frame512[:batch]), s3fd_final))
        if "retinaface" in args.nets:
            for flavour, opts in (("gpen", {}), ("facexlib", FACEXLIB_OPTIONS)):
                def rf_final(net, opts=opts, frame512=frame512):
                    det = RetinaFaceDetector(net, **opts)
                    boxes, points = det.detect(frame512[0])
                    return np.concatenate([boxes.reshape(-1), points.reshape(-1)])
                img = np.float32(frame512[0][:, :, ::-1]) - np.float32((104, 117, 123))
                x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
                cases.append((f"RetinaFace {flavour} at {size}",
                              lambda: load_net(RetinaFace(), name="retinaface", weights="seeded"), x, rf_final))
        if "fan" in args.nets:
            x, geo = fan_job(frame512)
            cases.append((f"FAN batch 12 (crops of {size} px frames)", lambda: load_fan(weights="seeded"), x,
                          lambda net, x=x, geo=geo: fan_points(net, x, geo)))

    def cpu_wall(fn):
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        return out, time.process_time() - c, time.perf_counter() - w

    rows = []
    for name, factory, x, final in cases:
        eager = factory()
        with torch.inference_mode():
            ref = eager(x)
        ref = ref if isinstance(ref, (list, tuple)) else [ref]
        ref_final = final(eager)
        runners = {"eager torch": eager}
        row = {"case": name, "shape": list(x.shape), "backends": {}}
        for backend in ("onnxruntime", "openvino"):
            with tempfile.TemporaryDirectory() as cache:
                options = AccelOptions(cpu_backend=backend, accel_cache_dir=cache)
                net = accelerate(copy.deepcopy(eager), options, type(eager).__name__)
                with torch.inference_mode():
                    _, first_cpu, first_wall = cpu_wall(lambda: net(x))
                    again = accelerate(copy.deepcopy(eager), options, type(eager).__name__)
                    out, cached_cpu, cached_wall = cpu_wall(lambda: again(x))
                out = out if isinstance(out, (list, tuple)) else [out]
                raw = max(float((a.float() - b.float()).abs().max()) for a, b in zip(ref, out))
                got_final = final(again)
                final_diff = (float(np.abs(got_final - ref_final).max()) if got_final.shape == ref_final.shape
                              and got_final.size else (0.0 if got_final.shape == ref_final.shape else float("inf")))
                row["backends"][backend] = {"first_call_cpu_s": first_cpu, "first_call_wall_s": first_wall,
                                            "cached_build_cpu_s": cached_cpu, "cached_build_wall_s": cached_wall,
                                            "max_abs_diff": raw, "final_max_abs_diff": final_diff,
                                            "final_size": int(ref_final.size),
                                            "output_max": max(float(r.abs().max()) for r in ref)}
                runners[backend] = again
                with torch.inference_mode():
                    for run in runners.values():
                        run(x)  # warm-up
                    times = {k: [] for k in runners}
                    for _ in range(args.repeats):
                        for k, run in runners.items():
                            start = time.process_time()
                            run(x)
                            times[k].append(time.process_time() - start)
                for k, t in times.items():
                    row.setdefault("cpu_s_per_call", {}).setdefault(k, []).extend(t)
        row["median_cpu_s"] = {k: statistics.median(v) for k, v in row["cpu_s_per_call"].items()}
        print(json.dumps(row, indent=1), flush=True)
        rows.append(row)
    Path(args.out).write_text(json.dumps({"threads": args.threads, "repeats": args.repeats,
                                          "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
