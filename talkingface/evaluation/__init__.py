"""Lip-sync evaluation that reproduces the reference tools.

* :mod:`.lse` — LSE-D / LSE-C with SyncNet (syncnet_python + Wav2Lip scripts),
  crops from :mod:`.lse_crop` (``face`` tracks or whole ``frame``);
* :mod:`.fid` — FID with the pytorch-fid Inception (:mod:`.inception`);
* :mod:`.fidelity` — PSNR / SSIM against ground truth (paired setting only);
* :mod:`.evaluator` — :func:`evaluate_pairs`: per-clip rows + aggregate.

Every metric is a :class:`~.base.BaseMetric` subclass that carries its own facts
(columns, labels, cache keys, checkpoints, when it applies); a new metric is one
file + one line in the registry (docs/ARCHITECTURE.md).

Names below are imported lazily so that importing the package stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalItem": "base", "EvalContext": "base", "Metric": "base", "BaseMetric": "base", "SkipClip": "base",
    "LSEMetric": "lse", "FIDMetric": "fid", "PSNRMetric": "fidelity", "SSIMMetric": "fidelity",
    "evaluate_pairs": "evaluator", "build_metrics": "evaluator",
    "SyncNet": "syncnet", "load_syncnet": "syncnet", "FIDInceptionV3": "inception", "load_inception": "inception",
    "frechet_distance": "fid", "psnr": "fidelity", "ssim": "fidelity",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
