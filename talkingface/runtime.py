"""Process-wide compute settings: CPU threads, the device, reduced-precision autocast.

One place for what every command and worker sets the same way, below the
models and metrics that use it (a model must not import the metrics package to
resolve a device name).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


def configure_threads(config: Mapping[str, Any]) -> None:
    """``num_threads`` > 0 caps torch's and OpenCV's CPU threads in this process.

    On a shared or small machine, fewer threads than cores avoids
    oversubscription (2 torch threads beside other work measured up to 3x slower
    than 1 on the 2-core dev VM, bench/results/batch.md).
    """
    threads = int(config.get("num_threads", 0) or 0)
    if threads > 0:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        log.info("CPU threads: %d", threads)


def resolve_device(device: Any) -> str:
    """``auto`` -> ``cuda`` when CUDA is available, else ``cpu``; other names pass through."""
    import torch

    device = str(device or "cpu")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """fp16/bf16 autocast on CUDA only; CPU stays fp32 (half precision is slower there)."""
    import torch

    if not device.startswith("cuda") or precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)
