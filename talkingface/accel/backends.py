"""Run a loaded network faster: channels_last, CPU bf16 / CUDA fp16-bf16 autocast, torch.compile, ONNX Runtime.

:func:`accelerate` returns the module itself (same parameters, so strict
checkpoint loading is untouched) with its ``forward`` wrapped; the wrapper
converts 4-D tensor inputs to the module's memory format and runs the call
under the chosen autocast. Why each default is what it is: bench/RESULTS.md.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


#: networks for which channels_last beat NCHW on CPU at fp32 parity (bench/results/levers.md, 1 thread):
#: ParseNet 1.22x, ReconNet 1.07x; D-Net 0.80x, GPEN 0.75x, GFPGAN 0.99x stay NCHW there
CPU_CHANNELS_LAST = frozenset({"ParseNet", "ReconNet"})


@dataclass(frozen=True)
class AccelOptions:
    """The config keys of the acceleration layer (same names as in the config schema)."""
    device: str = "cpu"
    precision: str = "auto"        # auto | fp32 | fp16 | bf16: auto = fp32 on CPU, fp16 on CUDA
    channels_last: str = "auto"    # auto | true | false: auto = where measured faster (CPU and CUDA convnets)
    compile: bool = False          # torch.compile (inductor) with a persistent cache under accel_cache_dir
    cpu_backend: str = "auto"      # auto | torch | onnxruntime | openvino: auto = the fastest measured installed one
    accel_cache_dir: str | None = None  # compiled kernels and exported ONNX files

    @classmethod
    def from_config(cls, config: Any, device: str) -> AccelOptions:
        return cls(device=device, precision=str(config.get("precision", "auto")),
                   channels_last=str(config.get("channels_last", "auto")).lower(),
                   compile=bool(config.get("compile", False)),
                   cpu_backend=str(config.get("cpu_backend", "auto")).lower(),
                   accel_cache_dir=config.get("accel_cache_dir"))

    @property
    def cache_dir(self) -> Path:
        return Path(self.accel_cache_dir or Path.home() / ".cache" / "talkingface" / "accel")

    def onnxruntime_for(self, network: str) -> bool:
        """ONNX Runtime runs ``network`` (see :meth:`cpu_backend_for`)."""
        return self.cpu_backend_for(network) == "onnxruntime"

    def cpu_backend_for(self, network: str) -> str | None:
        """The ONNX runtime that runs ``network`` on CPU ("onnxruntime" | "openvino"), or None for eager torch.

        Asked for by name: that runtime for any network, if installed. ``auto``: for the networks measured
        faster than torch at fp32 parity (:data:`onnx_backend.ORT_NETWORKS`), OpenVINO where it measured
        faster than ONNX Runtime (:data:`onnx_backend.OPENVINO_FIRST`) and is installed, else ONNX Runtime
        if installed, else torch; OpenVINO or torch for those only OpenVINO beat (:data:`onnx_backend.OPENVINO_ONLY`).
        """
        from talkingface.accel import onnx_backend

        if self.device != "cpu" or self.compile or self.autocast_dtype() is not None:
            return None
        if self.cpu_backend in onnx_backend.BACKENDS:
            return self.cpu_backend if onnx_backend.available(self.cpu_backend) else None
        if self.cpu_backend != "auto" or network not in onnx_backend.ORT_NETWORKS | onnx_backend.OPENVINO_ONLY:
            return None
        order = ("openvino", "onnxruntime") if network in onnx_backend.OPENVINO_FIRST else ("onnxruntime",)
        if network in onnx_backend.OPENVINO_ONLY:
            order = ("openvino",)
        return next((b for b in order if onnx_backend.available(b)), None)

    @property
    def use_channels_last(self) -> bool:
        """For a network not in :data:`CPU_CHANNELS_LAST`: auto = CUDA only (cuDNN NHWC kernels)."""
        return self.channels_last_for("")

    def channels_last_for(self, network: str) -> bool:
        """auto: every network on CUDA; on CPU only those bench_levers measured faster (levers.md)."""
        if self.channels_last == "auto":
            return self.device.startswith("cuda") or network in CPU_CHANNELS_LAST
        return self.channels_last in ("true", "1", "yes")

    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for plain fp32 (CPU default: reduced precision is opt-in)."""
        if self.precision == "fp32":
            return None
        if self.device.startswith("cuda"):
            return torch.bfloat16 if self.precision == "bf16" else torch.float16
        if self.precision == "bf16":
            return torch.bfloat16
        if self.precision == "fp16":
            log.warning("precision=fp16 is CUDA-only; CPU runs fp32 (precision=bf16 is the CPU option)")
        return None


def autocast(options: AccelOptions) -> contextlib.AbstractContextManager:
    """Autocast for ``options``: CUDA fp16/bf16 (auto = fp16), CPU bf16 only when asked for."""
    dtype = options.autocast_dtype()
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda" if options.device.startswith("cuda") else "cpu", dtype=dtype)


def _to_format(value: Any, memory_format: torch.memory_format) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() == 4 and value.is_floating_point():
        return value.contiguous(memory_format=memory_format)
    return value


def accelerate(module: torch.nn.Module, options: AccelOptions, name: str | None = None) -> torch.nn.Module:
    """``module`` with the chosen levers applied in place; returns it (idempotent).

    channels_last changes only the storage order of 4-D weights and inputs: the
    arithmetic is the same convolution (oneDNN / cuDNN pick NHWC kernels), so
    outputs stay within fp32 rounding of the NCHW ones. ``compile`` wraps the
    forward in ``torch.compile``; its kernels are cached on disk
    (``accel_cache_dir``), so only the first run on a machine pays for them.
    """
    if getattr(module, "_talkingface_accel", None) == options:
        return module
    name = name or type(module).__name__
    memory_format = torch.channels_last if options.channels_last_for(name) else torch.contiguous_format
    _set_memory_format(module, memory_format)
    forward = getattr(module, "_talkingface_plain_forward", None) or module.forward
    module._talkingface_plain_forward = forward
    run = forward
    if options.compile:
        run = compiled(forward, options)
    elif options.cpu_backend_for(name):
        from talkingface.accel.onnx_backend import OrtForward

        run = OrtForward(module, forward, options.cache_dir / "onnx", backend=options.cpu_backend_for(name))

    @functools.wraps(forward)
    def accelerated(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_to_format(a, memory_format) for a in args)
        kwargs = {k: _to_format(v, memory_format) for k, v in kwargs.items()}
        with autocast(options):
            return run(*args, **kwargs)

    module.forward = accelerated
    module._talkingface_accel = options
    log.debug("%s: channels_last=%s precision=%s compile=%s cpu_backend=%s", name, options.channels_last_for(name),
              options.precision, options.compile, options.cpu_backend_for(name))
    return module


def _set_memory_format(module: torch.nn.Module, memory_format: torch.memory_format) -> None:
    """4-D parameters and buffers in ``memory_format`` (``Module.to`` refuses modules with 5-D weights)."""
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=memory_format)


def compiled(forward: Any, options: AccelOptions) -> Any:
    """``torch.compile(forward)`` (inductor), its artefacts cached under ``accel_cache_dir`` across runs."""
    cache = options.cache_dir / "inductor"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    return torch.compile(forward, dynamic=False)
