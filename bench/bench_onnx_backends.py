"""Eager torch vs ONNX Runtime vs OpenVINO (f32) per network, with parity to eager fp32.

    python bench/bench_onnx_backends.py [--nets gpen,gfpgan,parsenet,dnet,enet_head] [--threads 1] [--repeats 2]
                                        [--extra-path DIR]

Each network (seeded-v1 weights; GPEN / GFPGAN / ParseNet batch 1 at 512 px, D-Net
and the E-Net head (style encoder + decoder, after the L-Net) at the pipeline's
batch 4: the pipeline's sizes) is
exported once the way talkingface/accel/onnx_backend.py does it (TorchScript
exporter, opset 17; GPEN's modulated convs in their non-fused form), then timed
in eager torch, ONNX Runtime and OpenVINO's CPU plugin with
INFERENCE_PRECISION_HINT=f32 (on AMX / AVX512-BF16 CPUs its default is bf16).
Process CPU seconds per call (median of ``--repeats`` after a warm-up; the
runtimes use their own threads, so thread CPU would miss them), speed-up over
eager, max abs difference from eager (over every output). GFPGAN and the E-Net
head run with their noise maps as inputs (the default noise path). Eager and the
runtimes are timed interleaved (one call of each per round), since the machine
is shared. Results of the networks run update bench/results/onnx_backends.json
(other networks' rows are kept) and the .md is written from all of them.
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


def cpu_per_call_interleaved(fns: dict, repeats: int) -> dict:
    """Median process CPU seconds per call of each function, after a warm-up, one call of each per round."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", default="gpen,gfpgan,parsenet,dnet,enet_head")
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

    def dnet():
        from talkingface.models.video_retalking.networks import build_networks
        net = build_networks("seeded", seed=0).dnet
        return net, (torch.rand(4, 3, 256, 256, generator=g) * 2 - 1, torch.randn(4, 73, 26, generator=g))

    def enet_head():
        from talkingface.models.video_retalking.networks import build_networks
        enet = build_networks("seeded", seed=0).enet
        ref, low_res = torch.rand(4, 3, 384, 384, generator=g), torch.rand(4, 3, 96, 96, generator=g)
        return enet.head, (ref, low_res, *enet.draw_noise(4, torch.Generator().manual_seed(1)))
    builders["dnet"], builders["enet_head"] = dnet, enet_head
    shapes = {"gpen": "1x512", "gfpgan": "1x512", "parsenet": "1x512", "dnet": "4x256", "enet_head": "4x384"}

    def flat(out):
        out = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else (out,)
        return [torch.as_tensor(np.asarray(o)).float() for o in out]
    tmp = Path(tempfile.mkdtemp())
    results = {}
    for name in args.nets.split(","):
        net, inputs = builders[name]()

        def eager(net=net, inputs=inputs):
            with torch.inference_mode():
                return net(*inputs)
        ref = flat(eager())
        if name != "dnet" and len(ref) > 1:  # D-Net: every output (flow, warp, fake) is compared
            ref = ref[:1]  # GFPGAN / ParseNet: the image / logits (their extra outputs are not used)
        path = tmp / f"{name}.onnx"
        fused = [m for m in net.modules() if getattr(m, "fused", None) is True]
        for m in fused:
            m.fused = False
        with torch.no_grad():
            torch.onnx.export(net, inputs, str(path), opset_version=17, dynamo=False)
        for m in fused:
            del m.fused
        rows = {"eager torch": {"max_abs_diff": 0.0}}
        calls = {"eager torch": eager}
        for backend in ("onnxruntime", "openvino"):
            try:
                session = _open(path, backend)
            except ImportError as exc:
                rows[backend] = {"error": f"not installed ({exc})"}
                continue
            feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}
            out = flat(session.run(None, feed))
            rows[backend] = {"max_abs_diff": max(float((o - r).abs().max()) for o, r in zip(out, ref))}
            calls[backend] = lambda s=session, f=feed: s.run(None, f)
        for backend, cpu_s in cpu_per_call_interleaved(calls, args.repeats).items():
            rows[backend]["cpu_s"] = cpu_s
        for row in rows.values():
            if "cpu_s" in row:
                row["speedup"] = rows["eager torch"]["cpu_s"] / row["cpu_s"]
        results[name] = {"rows": rows, "output_max": max(float(r.abs().max()) for r in ref),
                         "shape": shapes[name], "repeats": args.repeats}
        print(name, json.dumps(results[name]), flush=True)
    import openvino
    import onnxruntime

    out = REPO / "bench" / "results" / "onnx_backends"
    meta = {"threads": args.threads, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__}
    if out.with_suffix(".json").exists():  # rows of networks not run now are kept
        results = {**json.loads(out.with_suffix(".json").read_text())["results"], **results}
    out.with_suffix(".json").write_text(json.dumps({**meta, "results": results}, indent=1))
    lines = [f"# Eager torch vs ONNX Runtime {meta['onnxruntime']} vs OpenVINO {meta['openvino'].split('-')[0]} "
             f"(f32), {args.threads} thread, seeded-v1 weights, torch {meta['torch']}", "",
             "gpen / gfpgan / parsenet: `python bench/bench_onnx_backends.py --extra-path /tmp/speed3/ov` (median "
             "of 2); dnet / enet_head: `python bench/bench_onnx_backends.py --nets dnet,enet_head --repeats 3` "
             "(2026-12-01; each run updates the rows of the networks it ran)", "",
             "Process CPU seconds per call (median of `repeats` after a warm-up; eager and the runtimes interleaved "
             "for dnet / enet_head), speed-up over eager, max abs difference from eager fp32 over every output "
             "(parity: <= 1e-3, or 1e-5 of the output's largest magnitude for ParseNet's logits). Batch x size: "
             "the pipeline's. enet_head = the E-Net after the L-Net (style encoder + decoder, noise as inputs); "
             "the L-Net (FFT, not exported) costs 2.3 CPU s of the E-Net's 17.3 per batch of 4. Shared 2-core VM, "
             "measured beside other jobs.", "",
             "| network | batch x size | runtime | CPU s per call | speed-up | max abs diff | output max |",
             "|---|---|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        for backend, row in r["rows"].items():
            if "error" in row:
                lines.append(f"| {name} | {r.get('shape', '1x512')} | {backend} | - | - | - | {row['error']} |")
                continue
            lines.append(f"| {name} | {r.get('shape', '1x512')} | {backend} | {row['cpu_s']:.2f} | "
                         f"{row['speedup']:.2f}x | {row['max_abs_diff']:.1e} | {r['output_max']:.1f} |")
    old = out.with_suffix(".md").read_text() if out.with_suffix(".md").exists() else ""
    notes = old[old.index("\n## "):] if "\n## " in old else ""  # hand-written sections below the table stay
    out.with_suffix(".md").write_text("\n".join(lines) + "\n" + notes)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
