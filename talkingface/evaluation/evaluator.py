"""Score a list of clips with several metrics: per-clip rows plus an aggregate.

The runner and ``python -m talkingface evaluate`` both call
:func:`evaluate_pairs`. One bad clip never stops the batch: each metric's
failure on a clip becomes that clip's reason for that metric. The aggregate
records which weights produced the numbers (file + sha256, or seeded).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from talkingface.errors import TalkingFaceError
from talkingface.evaluation.base import EvalContext, EvalItem, Metric
from talkingface.registry import get as registry_get

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("lse", "fid", "psnr", "ssim")
NOT_APPLICABLE = "not applicable"
#: per-clip value columns of each metric (the aggregate gives mean/std/n of each)
CLIP_KEYS = {"lse": ("lse_d", "lse_c", "lse_offset"), "fid": ("fid_frames",), "psnr": ("psnr",), "ssim": ("ssim",)}
CONFIG_KEYS = ("lse_crop", "lse_detector", "vshift", "lse_batch_size", "lse_min_track", "lse_min_face_size",
               "fid_crop", "fid_batch_size", "fid_frame_stride", "fidelity_crop", "pairing", "fps", "weights", "device")


def _as_item(entry: EvalItem | Mapping[str, Any], index: int, paired: bool) -> EvalItem:
    if isinstance(entry, EvalItem):
        return entry
    name = str(entry.get("name") or entry.get("id") or Path(entry["generated_video"]).stem or f"clip{index}")
    item = EvalItem.from_generation(name, entry, paired=bool(entry.get("paired", paired)))
    return item


def build_metrics(names: Sequence[str], config: Mapping[str, Any] | None = None,
                  context: EvalContext | None = None) -> dict[str, Metric]:
    """Metric objects by registry name, sharing one :class:`EvalContext`."""
    context = context or EvalContext(config)
    return {name: registry_get("metric", name)(context.config, context=context) for name in names}


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120] or "clip"


def evaluate_pairs(items: Iterable[EvalItem | Mapping[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS,
                   config: Mapping[str, Any] | None = None, *, device: str | None = None,
                   plots_dir: str | Path | None = None, instances: Mapping[str, Metric] | None = None,
                   ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score every item with every metric.

    ``items``: :class:`EvalItem` or ``{"generated_video", "real_video", "audio", "name"|"id"}``
    mappings (a model's ``generate`` output). ``config``: the run config (keys
    in :data:`CONFIG_KEYS`). ``instances`` replaces the registry lookup (tests,
    preloaded networks). With ``plots_dir``, a sync-offset curve PNG per clip.

    Returns ``(rows, aggregate)``. A row: ``name``, ``generated``, ``reference``,
    ``audio``, the metrics' values (``None`` when not scored), ``reasons``
    (metric -> why not scored), ``status`` (ok | partial | failed; "not
    applicable" does not count as failure). The aggregate: per value
    ``{"mean", "std", "n", "skipped"}``, ``fid`` ``{"value", "generated_frames",
    "reference_frames"}``, ``weights`` per metric, ``clips`` counts with
    ``all_failed`` (the CLI's exit status), the evaluation config, and a
    ``warning`` when seeded weights were used.
    """
    config = dict(config or {})
    if device is not None:
        config["device"] = device
    paired = config.get("pairing") == "paired"
    if instances is None:
        context = EvalContext(config)
        instances = build_metrics(list(metrics), config, context)
    names = list(instances)
    rows: list[dict[str, Any]] = []
    for index, entry in enumerate(items):
        item = _as_item(entry, index, paired)
        merged: dict[str, Any] = {"name": item.name, "generated": _path(item.generated),
                                  "reference": _path(item.reference), "audio": _path(item.audio)}
        reasons: dict[str, str] = {}
        for name in names:
            metric = instances[name]
            try:
                result = metric.update(item)
            except Exception as exc:  # keep the batch going; the reason names the error
                reason = exc.message if isinstance(exc, TalkingFaceError) else f"error: {type(exc).__name__}: {exc}"
                if not isinstance(exc, TalkingFaceError):
                    log.exception("%s: %s raised", item.name, name)
                result = metric.skip(item.name, reason) if hasattr(metric, "skip") else \
                    {"skipped": True, "reason": reason}
            for key in CLIP_KEYS.get(name, ()):
                merged.setdefault(key, result.get(key))
            for key, value in result.items():
                if key not in ("name", "skipped", "reason") and key not in merged:
                    merged[key] = value
            if result.get("skipped"):
                reasons[name] = str(result.get("reason"))
        failures = [m for m, why in reasons.items() if not why.startswith(NOT_APPLICABLE)]
        applicable = [m for m in names if not reasons.get(m, "").startswith(NOT_APPLICABLE)]
        merged["reasons"] = reasons
        merged["status"] = "ok" if not failures else ("failed" if len(failures) == len(applicable) else "partial")
        if plots_dir is not None and "lse" in instances and item.name in getattr(instances["lse"], "curves", {}):
            from talkingface.evaluation.lse import plot_offset_curve

            curve = instances["lse"].curves[item.name]
            merged["lse_plot"] = str(plot_offset_curve(curve, instances["lse"].vshift,
                                                       Path(plots_dir) / f"{_safe_name(item.name)}_sync.png",
                                                       title=item.name))
        rows.append(merged)
    return rows, aggregate(rows, instances, config)


def _path(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "frames"):
        return str(getattr(value, "path", None) or "<array>")
    if hasattr(value, "shape"):
        return "<array>"
    return str(value)


def aggregate(rows: list[dict[str, Any]], instances: Mapping[str, Metric],
              config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, metric in instances.items():
        computed = metric.compute()
        if name == "fid":
            out["fid"] = {"value": computed.get("fid"), "generated_frames": int(computed.get("fid_generated_frames", 0)),
                          "reference_frames": int(computed.get("fid_reference_frames", 0))}
            continue
        for key in CLIP_KEYS.get(name, (name,)):
            if key == "lse_offset":
                continue
            if key in computed:
                out[key] = {"mean": computed[key], "std": computed.get(f"{key}_std"),
                            "n": int(computed.get(f"{name}_n", 0)), "skipped": int(computed.get(f"{name}_skipped", 0))}
    weights = {name: metric.weights_info for name, metric in instances.items()}
    out["weights"] = weights
    if any(info.get("weights") == "seeded" for info in weights.values()):
        from talkingface.weights_mode import SEEDED_BANNER

        out["warning"] = SEEDED_BANNER
    failed = sum(1 for r in rows if r["status"] == "failed")
    out["clips"] = {"total": len(rows), "failed": failed, "partial": sum(1 for r in rows if r["status"] == "partial"),
                    "all_failed": bool(rows) and failed == len(rows)}
    out["config"] = {k: config[k] for k in CONFIG_KEYS if k in config}
    return out
