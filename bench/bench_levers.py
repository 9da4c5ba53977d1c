"""Each CPU speed lever on each network, measured, with its parity to eager fp32.

    python bench/bench_levers.py [--threads 1] [--nets enet,dnet,gpen,gfpgan,parsenet,recon]
                                 [--levers channels_last,bf16,onnxruntime,compile] [--repeats 2]

Per network (seeded-v1 weights, batch 1 at the pipeline's sizes) and lever:
thread CPU seconds per call (median of ``--repeats`` after a warm-up; with one
thread this is the work, whatever else the shared machine runs), speed-up over
eager fp32, and the max abs difference of the outputs from eager fp32 (the
parity rule: a lever that changes outputs by more than 1e-3 is not a default;
bf16 is reported as the opt-in it is). ONNX Runtime needs ``onnxruntime`` +
``onnx`` importable (``--ort-path`` adds a folder to sys.path). Writes
bench/results/levers.md + .json.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def thread_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def networks(names: list[str]):
    """name -> (module, inputs builder returning (args, kwargs), output picker)."""
    import torch

    from talkingface.face.gfpgan import load_gfpgan
    from talkingface.face.gpen import load_gpen
    from talkingface.face.parsing import load_parsenet
    from talkingface.face.recon3d import load_recon
    from talkingface.models.video_retalking.networks import build_networks

    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=g) * 2 - 1

    out = {}
    if "enet" in names or "dnet" in names:
        nets = build_networks("seeded", seed=0)
    if "enet" in names:
        mel, img = rand(1, 1, 80, 16), rand(1, 6, 384, 384).abs()
        out["enet"] = (nets.enet, lambda: ((mel, img, img[:, 3:]), {"generator": torch.Generator().manual_seed(1)}),
                       lambda o: o[0])
    if "dnet" in names:
        src, drive = rand(1, 3, 256, 256), rand(1, 73, 26)
        out["dnet"] = (nets.dnet, lambda: ((src, drive), {}), lambda o: o["fake_image"])
    if "gpen" in names:
        x = rand(1, 3, 512, 512)
        out["gpen"] = (load_gpen(weights="seeded"), lambda x=x: ((x,), {}), lambda o: o)
    if "gfpgan" in names:
        x = rand(1, 3, 512, 512)
        out["gfpgan"] = (load_gfpgan(weights="seeded"), lambda x=x: ((x,), {}), lambda o: o[0] if isinstance(o, tuple) else o)
    if "parsenet" in names:
        x = rand(1, 3, 512, 512)
        out["parsenet"] = (load_parsenet(weights="seeded"), lambda x=x: ((x,), {}), lambda o: o[0] if isinstance(o, tuple) else o)
    if "recon" in names:
        x = rand(1, 3, 224, 224).abs()
        out["recon"] = (load_recon(weights="seeded"), lambda x=x: ((x,), {}), lambda o: o)
    return out


def ort_session(module, inputs, threads: int, tmp: Path):
    import onnxruntime as ort
    import torch

    args, kwargs = inputs()
    path = tmp / f"{type(module).__name__}.onnx"
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(module, args, str(path), opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run():
        a, _ = inputs()
        return torch.from_numpy(sess.run(None, {n: t.numpy() for n, t in zip(names, a)})[0])
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nets", default="enet,dnet,gpen,gfpgan,parsenet,recon")
    parser.add_argument("--levers", default="channels_last,bf16,channels_last+bf16,onnxruntime")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ort-path", default=None)
    parser.add_argument("--name", default="levers")
    args = parser.parse_args()
    if args.ort_path:
        sys.path.append(args.ort_path)
    import torch

    torch.set_num_threads(args.threads)
    from talkingface.accel import AccelOptions, accelerate

    results = {}
    nets = networks(args.nets.split(","))
    tmp = Path(tempfile.mkdtemp())
    for name, (module, inputs, pick) in nets.items():
        def call(m=module):
            a, k = inputs()
            with torch.inference_mode():
                return pick(m(*a, **k)).float()
        reference = call()
        base = thread_seconds(call, args.repeats)
        rows = {"eager fp32": {"cpu_s": base, "speedup": 1.0, "max_abs_diff": 0.0}}
        print(name, "eager", round(base, 3), flush=True)
        for lever in args.levers.split(","):
            try:
                if lever == "onnxruntime":
                    run = ort_session(module, inputs, args.threads, tmp)
                    fn = lambda: run().float()  # noqa: E731
                else:
                    m = copy.deepcopy(module)
                    opts = AccelOptions(device="cpu",
                                        precision="bf16" if "bf16" in lever else "fp32",
                                        channels_last="true" if "channels_last" in lever else "false",
                                        compile="compile" in lever, cpu_backend="torch",
                                        accel_cache_dir=os.environ.get("TALKINGFACE_ACCEL_CACHE"))
                    accelerate(m, opts)
                    fn = lambda m=m: call(m)  # noqa: E731
                start = time.perf_counter()
                out = fn()
                first = time.perf_counter() - start
                diff = float((out - reference).abs().max())
                cpu = thread_seconds(fn, args.repeats)
                rows[lever] = {"cpu_s": cpu, "speedup": base / cpu, "max_abs_diff": diff, "first_call_s": first,
                               "output_range": float(reference.abs().max())}
            except Exception as exc:  # a lever that cannot run this network is a finding, not a crash
                rows[lever] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
            print(name, lever, rows[lever], flush=True)
        results[name] = rows
    out = REPO / "bench" / "results" / args.name
    out.with_suffix(".json").write_text(json.dumps({"threads": args.threads, "torch": torch.__version__,
                                                    "results": results}, indent=1))
    lines = [f"# CPU levers per network ({args.threads} thread(s), batch 1, seeded-v1 weights, torch "
             f"{torch.__version__})", "", f"`python bench/bench_levers.py {' '.join(sys.argv[1:])}`", "",
             "Thread CPU seconds per call (median of %d after a warm-up), speed-up over eager fp32, and the max "
             "abs difference from eager fp32's output (parity rule for a default: <= 1e-3)." % args.repeats, "",
             "| network | lever | CPU s per call | speed-up | max abs diff | note |", "|---|---|---:|---:|---:|---|"]
    for name, rows in results.items():
        for lever, r in rows.items():
            if "error" in r:
                lines.append(f"| {name} | {lever} | - | - | - | fails: {r['error']} |")
                continue
            ok = r["max_abs_diff"] <= 1e-3
            note = "" if lever == "eager fp32" else ("within parity" if ok else "outside fp32 parity (opt-in only)")
            lines.append(f"| {name} | {lever} | {r['cpu_s']:.3f} | {r['speedup']:.2f}x | {r['max_abs_diff']:.2e} | "
                         f"{note} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
