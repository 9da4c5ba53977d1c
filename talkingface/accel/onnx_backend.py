"""ONNX Runtime or OpenVINO as the CPU backend of a network, where measured faster at fp32 parity.

The module is exported (TorchScript exporter, opset 17, static shapes) at its
first call with each input shape, to ``<cache>/<Class>-<weights digest>-<shape>.onnx``,
so later runs load the file. The call that exports also runs eager torch and
compares (the verdict is stored beside the file, so later runs neither export nor re-check): an export that differs by more than 1e-3 (or 1e-5 of the output's largest
magnitude, for large logits) is not used (a warning, then
eager from then on), so the backend can never change outputs beyond fp32 parity.
The same ONNX file runs in ONNX Runtime or in OpenVINO's CPU plugin (pinned to
f32 inference: on AMX / AVX512-BF16 CPUs OpenVINO would otherwise run bf16);
each backend has its own parity verdict.

StyleGAN2 modulated convs (GPEN) export in their non-fused formulation
(``fused = False`` during the export): the per-sample kernel of the fused one
has no static shape in the graph, the non-fused one convolves with the
constant weight, and is the same arithmetic up to fp32 rounding.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

#: networks ONNX Runtime / OpenVINO ran faster than eager torch at parity on CPU (bench/results/levers.md,
#: 1 thread): ReconNet 2.85x, ParseNet 1.75x, GFPGAN 1.10x (ORT); GPEN 2.0x (ORT) / 2.5x (OpenVINO) in its
#: non-fused export; the E-Net's head (after the L-Net, noise as inputs, batch 4) 1.23x (ORT) / 1.63x (OpenVINO);
#: the whole E-Net does not export (the L-Net's FFT) and stays on torch (bench/results/onnx_backends.md)
ORT_NETWORKS = frozenset({"ReconNet", "ParseNet", "GFPGANv1Clean", "FullGenerator", "ENetHead",
                          # face detectors and landmarks (bench/results/onnx_backends.md, detectors section):
                          # S3FD 1.25x, RetinaFace 1.75x, FAN 1.30x per call at the bench's shapes
                          "S3FD", "RetinaFace", "FAN"})
#: faster than torch on OpenVINO only: D-Net 1.26x (OpenVINO) but 0.97x (ORT) at batch 4; torch without OpenVINO
OPENVINO_ONLY = frozenset({"DNet"})
BACKENDS = ("onnxruntime", "openvino")
#: of those, where OpenVINO (f32) ran faster than ONNX Runtime (bench/results/levers.md, 1 thread):
#: GPEN 1.27x, GFPGAN 1.24x, ParseNet 1.07x; ``cpu_backend: auto`` prefers it there when installed
OPENVINO_FIRST = frozenset({"FullGenerator", "GFPGANv1Clean", "ParseNet", "ENetHead",
                            # S3FD / FAN: OpenVINO = ONNX Runtime within 5 %, closer to eager (2.7e-6 vs 6.8e-6
                            # on S3FD); RetinaFace stays on ONNX Runtime (4 % faster, half the difference)
                            "S3FD", "FAN"})
PARITY = 1e-3
#: logits of large magnitude (ParseNet's reach ~200 with seeded weights) are compared relative to their
#: largest value, as the parity fixtures do (tests/fixtures/parity/README.md: 1e-5 relative)
PARITY_RELATIVE = 1e-5


def available(backend: str = "onnxruntime") -> bool:
    """``backend`` ("onnxruntime" | "openvino") importable, and torch's ONNX exporter with it."""
    try:
        if backend == "openvino":
            import openvino  # noqa: F401
        else:
            import onnxruntime  # noqa: F401
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _OpenVinoSession:
    """An OpenVINO CPU model behind ONNX Runtime's ``get_inputs()`` / ``run(None, feed)`` interface."""

    class _Input:
        def __init__(self, name: str) -> None:
            self.name = name

    def __init__(self, path: Path) -> None:
        import openvino as ov

        core = ov.Core()
        # compiled blobs beside the ONNX files: a second build of the same graph takes 0.6 s instead of 4.9 s
        # (GPEN at 512 px, bench/results/onnx_backends.md); a stale blob is keyed out by OpenVINO itself
        core.set_property({"CACHE_DIR": str(path.parent / "openvino")})
        # f32: parity (the CPU plugin's default on bf16-capable CPUs is bf16); threads: torch's budget
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()),
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        self.model = core.compile_model(str(path), "CPU", config)
        self.request = self.model.create_infer_request()
        self.inputs = [self._Input(port.get_any_name()) for port in self.model.inputs]

    def get_inputs(self) -> list[Any]:
        return self.inputs

    def run(self, _outputs: Any, feed: dict[str, Any]) -> list[Any]:
        import numpy as np

        result = self.request.infer([feed[i.name] for i in self.inputs])
        return [np.array(result[port]) for port in self.model.outputs]


def _open(path: Path, backend: str = "onnxruntime") -> Any:
    """A CPU session of ``backend`` on ``path``, using as many threads as torch is allowed."""
    if backend == "openvino":
        return _OpenVinoSession(path)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    # no CPU arena: it keeps each session's peak activations (GFPGAN + ParseNet at 512: +2.6 GB measured),
    # freeing them costs ~3 % of the speed
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _structure(out: Any) -> Any:
    """How a forward's result maps to the graph's flat outputs (stored in the ``.verified.json``)."""
    if isinstance(out, dict):  # the exporter flattens a dict into its values, in insertion order
        return {"dict": list(out)}
    return "tuple" if isinstance(out, (tuple, list)) else "tensor"


def _flatten(out: Any) -> tuple[torch.Tensor, ...]:
    if isinstance(out, dict):
        return tuple(out.values())
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class OrtForward:
    """``forward``-compatible callable running ONNX Runtime sessions, one per input shape."""

    def __init__(self, module: torch.nn.Module, eager: Any, cache_dir: str | Path,
                 backend: str = "onnxruntime") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.module, self.eager, self.backend = module, eager, backend
        self.cache = Path(cache_dir)
        self.sessions: dict[tuple, Any] = {}
        self.structure: dict[tuple, Any] = {}
        self.failed = False
        self._digest: str | None = None

    def _session(self, args: tuple[torch.Tensor, ...]) -> tuple[Any, Any] | None:
        key = tuple(tuple(a.shape) for a in args)
        if key in self.sessions:
            return self.sessions[key], self.structure[key]
        self._digest = self._digest or _digest(self.module)
        shape = "_".join("x".join(map(str, s)) for s in key)
        if len(shape) > 64:  # many inputs (GFPGAN's noise maps): a digest keeps the file name short
            shape = hashlib.sha256(shape.encode()).hexdigest()[:16]
        path = self.cache / f"{type(self.module).__name__}-{self._digest}-{shape}.onnx"
        verified = path.with_suffix(".verified.json" if self.backend == "onnxruntime" else f".{self.backend}.verified.json")
        if path.exists() and verified.exists():  # exported and checked by an earlier run: load it as it is
            import json

            structure = json.loads(verified.read_text())["structure"]
            session = _open(path, self.backend)
            self.sessions[key], self.structure[key] = session, structure
            return session, structure
        eager_out = self.eager(*args)
        if not path.exists():
            self.cache.mkdir(parents=True, exist_ok=True)
            # one temporary name per process: Ray workers (or test workers) sharing a cache folder may export
            # the same network at once; each renames its own complete file into place
            tmp = path.with_suffix(f".{os.getpid()}.tmp.onnx")

            class Wrapped(torch.nn.Module):  # the plain forward, whatever wrapper is installed on the module
                def __init__(self, inner: torch.nn.Module, forward: Any) -> None:
                    super().__init__()
                    self.inner, self.fn = inner, forward

                def forward(self, *a: torch.Tensor) -> Any:
                    return self.fn(*a)

            unfused = [m for m in self.module.modules() if getattr(m, "fused", None) is True]
            with torch.inference_mode(False), torch.no_grad():
                example = tuple(a.clone().contiguous() for a in args)  # normal tensors: the tracer refuses inference ones
                try:
                    for m in unfused:  # static kernels in the graph (module docstring)
                        m.fused = False
                    # the wrapper in the module's own mode: the exporter restores the wrapper's mode afterwards,
                    # recursively, and a new Module is in training mode (it would leave BatchNorm training)
                    wrapped = Wrapped(self.module, self.eager).train(self.module.training)
                    torch.onnx.export(wrapped, example, str(tmp), opset_version=17, dynamo=False)
                except Exception as exc:  # an op the exporter does not know (e.g. the L-Net's FFT): stay on torch
                    log.warning("%s: ONNX export failed (%s); torch kept", type(self.module).__name__,
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    self.failed = True
                    tmp.unlink(missing_ok=True)
                    return None
                finally:
                    for m in unfused:
                        del m.fused  # back to the class default (fused) for eager torch
            tmp.replace(path)
        session = _open(path, self.backend)
        structure = _structure(eager_out)
        self.sessions[key], self.structure[key] = session, structure
        got = self._run(session, structure, args)
        flat_e, flat_g = _flatten(eager_out), _flatten(got)
        diff = max(float((e.float() - g).abs().max()) for e, g in zip(flat_e, flat_g))
        scale = max(float(e.float().abs().max()) for e in flat_e)
        if len(flat_e) != len(flat_g) or diff > max(PARITY, PARITY_RELATIVE * scale):
            log.warning("%s: %s output differs from torch by %.2e (> %.0e); torch kept",
                        type(self.module).__name__, self.backend, diff, PARITY)
            self.failed = True
            return None
        import json

        pending = verified.with_suffix(f".{os.getpid()}.tmp")
        pending.write_text(json.dumps({"structure": structure, "max_abs_diff": diff, "scale": scale}))
        pending.replace(verified)  # a reader never sees half a file
        log.info("%s: %s backend for input %s (parity %.1e)", type(self.module).__name__, self.backend, key, diff)
        return session, structure

    @staticmethod
    def _run(session: Any, structure: str, args: tuple[torch.Tensor, ...]) -> Any:
        names = [i.name for i in session.get_inputs()]
        outs = session.run(None, {n: a.detach().contiguous().cpu().numpy() for n, a in zip(names, args)})
        tensors = tuple(torch.from_numpy(o) for o in outs)
        if isinstance(structure, dict):  # D-Net's {"flow_field", "warp_image", "fake_image"}, in the graph's order
            return dict(zip(structure["dict"], tensors))
        return tensors if structure == "tuple" else tensors[0]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        usable = (not self.failed and not kwargs and args and not torch.is_grad_enabled()
                  and all(isinstance(a, torch.Tensor) and a.device.type == "cpu" and a.dtype == torch.float32
                          for a in args))
        if not usable:
            return self.eager(*args, **kwargs)
        found = self._session(tuple(args))
        if found is None:
            return self.eager(*args)
        return self._run(found[0], found[1], tuple(args))
