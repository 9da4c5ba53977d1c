"""Glue between the runner's items and the metrics of :mod:`talkingface.evaluation`."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from talkingface.config import Config

log = logging.getLogger(__name__)

METRIC_CHECKPOINTS = {"lse": ["syncnet"], "fid": ["inception"], "psnr": [], "ssim": []}
#: aggregate rows of the table, in reading order
TABLE_KEYS = (("lse_d", "LSE-D (lower is better)"), ("lse_c", "LSE-C (higher is better)"), ("fid", "FID"),
              ("psnr", "PSNR (dB)"), ("ssim", "SSIM"))


def required_checkpoints(config: Config) -> list[str]:
    names: list[str] = []
    for metric in config.get("metrics", []):
        names += METRIC_CHECKPOINTS.get(metric, [])
    if "lse" in config.get("metrics", []) and config.get("lse_crop") == "face" and config.get("lse_detector") == "s3fd":
        names.append("syncnet_s3fd")
    return names


def eval_config(config: Config, weights: Any) -> dict[str, Any]:
    """The run config with the weights mode already resolved by the pre-flight."""
    out = dict(config)
    out["weights"] = "seeded" if getattr(weights, "seeded", False) else "official"
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value))


def table_aggregate(aggregate: dict[str, Any], pairing: str) -> dict[str, Any]:
    """Evaluator aggregate -> ``{label: {mean, std, count, note}}`` for the report table."""
    out: dict[str, Any] = {}
    for key, label in TABLE_KEYS:
        if key == "fid" and isinstance(aggregate.get("fid"), dict):
            fid = aggregate["fid"]
            out[label] = {"mean": fid.get("value"), "std": None, "count": fid.get("generated_frames"),
                          "note": f"{fid.get('generated_frames')} vs {fid.get('reference_frames')} frames"}
        elif isinstance(aggregate.get(key), dict):
            agg = aggregate[key]
            note = ""
            if key in ("psnr", "ssim") and pairing != "paired":
                note = "not applicable (unpaired: no ground truth)"
            elif agg.get("skipped"):
                note = f"{agg['skipped']} clip(s) skipped"
            out[label] = {"mean": agg.get("mean") if _finite(agg.get("mean")) else None,
                          "std": agg.get("std") if _finite(agg.get("std")) else None,
                          "count": agg.get("n"), "note": note}
    return out


def _reference(record: dict[str, Any], config: Config) -> Any:
    """The real video, cut like the generated one when ``max_seconds`` shortened the run."""
    path = Path(record["real_video"])
    if not config.get("max_seconds"):
        return path
    from talkingface.media import VideoClip, read_video

    clip = read_video(path, float(config["fps"]))
    keep = max(1, int(round(float(config["max_seconds"]) * float(config["fps"]))))
    return VideoClip(clip.frames[:keep], clip.fps, path, clip.source_fps, clip.info)


def evaluate_run(items: list, records: dict[str, dict[str, Any]], config: Config, weights: Any) -> dict[str, Any]:
    from talkingface.evaluation.base import EvalItem
    from talkingface.evaluation.evaluator import evaluate_pairs

    to_score = []
    for item in items:
        record = records.get(item.id)
        if record and record.get("status") == "ok":
            to_score.append(EvalItem(item.id, Path(record["generated_video"]), _reference(record, config),
                                     Path(record["audio"]), item.pair.paired))
    plots = Path(items[0].run_dir) / "plots" if items and config.get("plots", True) else None
    rows, aggregate = ([], {})
    if to_score:
        log.info("evaluating %d clip(s) with %s", len(to_score), ", ".join(config["metrics"]))
        rows, aggregate = evaluate_pairs(to_score, config["metrics"], eval_config(config, weights), plots_dir=plots)
    by_name = {row["name"]: row for row in rows}
    per_clip = []
    counts = {"succeeded": 0, "failed": 0, "skipped": 0}
    for item in items:
        record = records.get(item.id, {})
        row = by_name.get(item.id)
        if row is None:
            status = record.get("status", "missing")
            per_clip.append({"id": item.id, "status": "failed" if status == "failed" else "skipped",
                             "error": record.get("error") or "not generated (run the generate stage)"})
            counts["failed" if status == "failed" else "skipped"] += 1
            continue
        reasons = row.get("reasons", {})
        status = "failed" if row["status"] == "failed" else "ok"
        error = "; ".join(f"{m}: {why}" for m, why in reasons.items()) or None
        per_clip.append({"id": item.id, "status": status, "error": error if status == "failed" else None,
                         "notes": error if status == "ok" else None,
                         **{k: v for k, v in row.items() if k not in ("name", "status", "reasons")}})
        counts["failed" if status == "failed" else "succeeded"] += 1
    return {"per_clip": per_clip, "aggregate": table_aggregate(aggregate, config.get("pairing", "unpaired")),
            "evaluation": {k: v for k, v in aggregate.items() if k not in ("lse_d", "lse_c", "psnr", "ssim", "fid")},
            "counts": counts}
