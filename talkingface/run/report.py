"""Results on stdout (texttable) and in the run folder (results.json / results.csv)."""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from texttable import Texttable

from talkingface.atomic import atomic_write_json, atomic_write_text


PROTOCOL_WORDS = {"reference": "the reference tools' ffmpeg media chain, comparable with published tables",
                  "direct": "lossless decoding, not comparable with published tables"}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def metric_table(results: dict[str, Any]) -> str:
    """The aggregate table people read first: metric, mean, std, clips."""
    table = Texttable(max_width=110)
    table.set_deco(Texttable.HEADER | Texttable.BORDER | Texttable.VLINES)
    table.header(["metric", "mean", "std", "clips", "note"])
    table.set_cols_dtype(["t", "t", "t", "t", "t"])
    for name, agg in results.get("aggregate", {}).items():
        if isinstance(agg, dict):
            table.add_row([name, _fmt(agg.get("mean")), _fmt(agg.get("std")), _fmt(agg.get("count")),
                           agg.get("note", "")])
        else:
            table.add_row([name, _fmt(agg), "", "", ""])
    counts = results.get("counts", {})
    lines = [table.draw()]
    lse = (results.get("evaluation") or {}).get("config") or {}
    if lse.get("lse_protocol"):  # published LSE tables are only comparable under the same protocol
        lines.append(f"LSE protocol: {lse['lse_protocol']} ({PROTOCOL_WORDS.get(lse['lse_protocol'], '')}), "
                     f"aggregation: {lse.get('lse_aggregation', 'per_clip')}")
    if counts:
        lines.append("items: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for row in results.get("per_clip", []):
        if row.get("status") not in (None, "ok"):
            lines.append(f"  {row['id']}: {row.get('status')} - {row.get('error') or row.get('reason')}")
    timings = results.get("timings") or {}
    if timings:
        lines.append("time per stage (s, all items): " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(timings.items(), key=lambda kv: -kv[1])))
    if "WARNING" in results:
        lines.append("WARNING: " + results["WARNING"])
    return "\n".join(lines)


#: per-clip columns that hold file paths: written relative to the run folder (the folder of results.csv)
PATH_COLUMNS = ("generated", "reference", "audio", "generated_video", "real_video", "lse_plot")


def _relative(value: Any, run_dir: Path | None) -> Any:
    if run_dir is None or not isinstance(value, str) or not value:
        return value
    return os.path.relpath(os.path.abspath(value), os.path.abspath(run_dir))


def results_csv(results: dict[str, Any], run_dir: str | Path | None = None) -> str:
    """One row per clip, then MEAN and STD rows in the same columns (the metric's own column).

    Paths are relative to ``run_dir`` (where results.csv lives), whatever
    mixture of relative and absolute paths the records hold.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    rows = [{k: (_relative(v, run_dir) if k in PATH_COLUMNS else v) for k, v in row.items()
             if not isinstance(v, (dict, list))} for row in results.get("per_clip", [])]
    stats: dict[str, dict[str, Any]] = {"MEAN": {"id": "MEAN", "status": "aggregate"},
                                        "STD": {"id": "STD", "status": "aggregate"}}
    aggregate = results.get("aggregate", {})
    if aggregate:
        from talkingface.evaluation.evaluator import report_columns

        columns_of = report_columns()  # table label -> the metric's per-clip column (its class's `labels`)
    for name, agg in aggregate.items():
        if isinstance(agg, dict):
            column = columns_of.get(name, name)
            stats["MEAN"][column], stats["STD"][column] = agg.get("mean"), agg.get("std")
    if len(stats["MEAN"]) > 2:
        rows += [stats["MEAN"], stats["STD"]]
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    run_wide = {key: value for key, value in run_columns(results).items() if value}
    columns += [key for key in run_wide if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **run_wide})
    return buffer.getvalue()


def run_columns(results: dict[str, Any]) -> dict[str, Any]:
    """What every row of results.csv shares and a reader needs to compare it with another table: the
    weights, and how the LSE numbers were made (published LSE tables only compare under one protocol)."""
    weights = results.get("weights", {}).get("weights") if isinstance(results.get("weights"), dict) else None
    lse = (results.get("evaluation") or {}).get("config") or {}
    protocol = lse.get("lse_protocol")
    return {"weights": weights, "lse_protocol": protocol,
            "lse_aggregation": lse.get("lse_aggregation", "per_clip") if protocol else None}


def write_results(run_dir: Path, results: dict[str, Any], config: Any) -> None:
    atomic_write_json(run_dir / "results.json", results)
    atomic_write_text(run_dir / "results.csv", results_csv(results, run_dir))
    if getattr(config, "get", lambda *_: False)("plots", False):
        from talkingface.run.report_html import write_report

        try:
            write_report(run_dir, results)
        except Exception as exc:  # a convenience page must never cost the results
            import logging

            logging.getLogger(__name__).warning("report.html not written: %s", exc)
    print(metric_table(results), flush=True)
