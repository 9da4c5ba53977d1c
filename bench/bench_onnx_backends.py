"""Eager torch vs ONNX Runtime vs OpenVINO (f32) per network, with parity to eager fp32.

    python bench/bench_onnx_backends.py [--nets gpen,gfpgan,parsenet] [--threads 1] [--repeats 2]
                                        [--extra-path DIR]

Each network (seeded-v1 weights, batch 1 at 512 px, the pipeline's size) is
exported once the way talkingface/accel/onnx_backend.py does it (TorchScript
exporter, opset 17; GPEN's modulated convs in their non-fused form), then timed
in eager torch, ONNX Runtime and OpenVINO's CPU plugin with
INFERENCE_PRECISION_HINT=f32 (on AMX / AVX512-BF16 CPUs its default is bf16).
Process CPU seconds per call (median of ``--repeats`` after a warm-up; the
runtimes use their own threads, so thread CPU would miss them), speed-up over
eager, max abs difference from eager. GFPGAN runs with its noise maps as inputs
(the default noise path). Writes bench/results/onnx_backends.md + .json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def cpu_per_call(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", default="gpen,gfpgan,parsenet")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--extra-path", default=None, help="a folder with openvino, added to sys.path")
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from talkingface.accel.onnx_backend import _open
    from talkingface.face.gfpgan import load_gfpgan
    from talkingface.face.gpen import load_gpen
    from talkingface.face.parsing import load_parsenet

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 512, 512, generator=g) * 2 - 1
    builders = {"gpen": lambda: (load_gpen(weights="seeded"), (x,)),
                "parsenet": lambda: (load_parsenet(weights="seeded"), (x,))}

    def gfpgan():
        net = load_gfpgan(weights="seeded")
        return net, (x, *net.stylegan_decoder.draw_noise(1, torch.Generator().manual_seed(1)))
    builders["gfpgan"] = gfpgan
    tmp = Path(tempfile.mkdtemp())
    results = {}
    for name in args.nets.split(","):
        net, inputs = builders[name]()

        def eager(net=net, inputs=inputs):
            with torch.inference_mode():
                out = net(*inputs)
            return (out[0] if isinstance(out, tuple) else out).float()
        ref = eager()
        rows = {"eager torch": {"cpu_s": cpu_per_call(eager, args.repeats), "max_abs_diff": 0.0}}
        path = tmp / f"{name}.onnx"
        fused = [m for m in net.modules() if getattr(m, "fused", None) is True]
        for m in fused:
            m.fused = False
        with torch.no_grad():
            torch.onnx.export(net, inputs, str(path), opset_version=17, dynamo=False)
        for m in fused:
            del m.fused
        for backend in ("onnxruntime", "openvino"):
            try:
                session = _open(path, backend)
            except ImportError as exc:
                rows[backend] = {"error": f"not installed ({exc})"}
                continue
            feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
            out = torch.from_numpy(np.asarray(session.run(None, feed)[0]))
            rows[backend] = {"cpu_s": cpu_per_call(lambda s=session, f=feed: s.run(None, f), args.repeats),
                             "max_abs_diff": float((out - ref).abs().max())}
        for row in rows.values():
            if "cpu_s" in row:
                row["speedup"] = rows["eager torch"]["cpu_s"] / row["cpu_s"]
        results[name] = {"rows": rows, "output_max": float(ref.abs().max())}
        print(name, json.dumps(results[name]), flush=True)
    import openvino
    import onnxruntime

    out = REPO / "bench" / "results" / "onnx_backends"
    meta = {"threads": args.threads, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__}
    out.with_suffix(".json").write_text(json.dumps({**meta, "results": results}, indent=1))
    lines = [f"# Eager torch vs ONNX Runtime {meta['onnxruntime']} vs OpenVINO {meta['openvino'].split('-')[0]} "
             f"(f32), {args.threads} thread, batch 1 at 512 px, seeded-v1 weights, torch {meta['torch']}", "",
             f"`python bench/bench_onnx_backends.py {' '.join(sys.argv[1:])}`", "",
             f"Process CPU seconds per call (median of {args.repeats} after a warm-up), speed-up over eager, max abs "
             "difference from eager fp32 (parity: <= 1e-3, or 1e-5 of the output's largest magnitude for "
             "ParseNet's logits). Shared 2-core VM, measured beside other jobs.", "",
             "| network | runtime | CPU s per call | speed-up | max abs diff | output max |",
             "|---|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        for backend, row in r["rows"].items():
            if "error" in row:
                lines.append(f"| {name} | {backend} | - | - | - | {row['error']} |")
                continue
            lines.append(f"| {name} | {backend} | {row['cpu_s']:.2f} | {row['speedup']:.2f}x | "
                         f"{row['max_abs_diff']:.1e} | {r['output_max']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
