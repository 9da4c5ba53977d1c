"""Glue between the runner's items and the metrics of talkingface.evaluation."""
from __future__ import annotations

import logging
from typing import Any

from talkingface.config import Config

log = logging.getLogger(__name__)

METRIC_CHECKPOINTS = {"lse": ["syncnet"], "fid": ["inception"], "psnr": [], "ssim": []}


def required_checkpoints(config: Config) -> list[str]:
    names: list[str] = []
    for metric in config.get("metrics", []):
        names += METRIC_CHECKPOINTS.get(metric, [])
    if "lse" in config.get("metrics", []) and config.get("lse_crop") == "face" and config.get("lse_detector") == "s3fd":
        names.append("syncnet_s3fd")
    return names


def evaluate_run(items: list, records: dict[str, dict[str, Any]], config: Config, weights: Any) -> dict[str, Any]:
    rows = []
    for item in items:
        record = records.get(item.id, {})
        rows.append({"id": item.id, "status": record.get("status", "missing"), "error": record.get("error")})
    from talkingface.runner import _counts

    return {"per_clip": rows, "aggregate": {}, "counts": _counts(rows)}
