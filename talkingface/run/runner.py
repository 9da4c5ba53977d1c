"""The quick-start flow: config -> pairs -> model -> generate (resumable) -> evaluate -> report.

Every finished item is written at once (video + per-item JSON, atomically), so a
killed run loses at most the item in flight; the same command finds the
unfinished run folder (same config fingerprint) and continues it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkingface import registry
from talkingface.atomic import atomic_write_json, atomic_write_text
from talkingface.config import Config
from talkingface.config.schema import keys_in_scope
from talkingface.logs import log_to_file
from talkingface.run.items import Item, read_record

if TYPE_CHECKING:
    from talkingface.data.base import Pair

log = logging.getLogger(__name__)

#: a run folder is resumed by the settings that change what it generates; evaluation and
#: runtime settings (scope in the schema) can change between runs of the same folder
_FINGERPRINT_KEYS = keys_in_scope("generate")


def fingerprint(config: Config) -> str:
    data = {k: v for k, v in sorted(config.items()) if k in _FINGERPRINT_KEYS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_run_dir(config: Config) -> tuple[Path, bool]:
    """The run folder and whether it is resumed.

    ``run_dir`` given: that folder. Otherwise, with ``resume``, the newest
    unfinished folder of the same model/dataset/fingerprint (``stage:
    evaluate``: the newest one, finished or not: it re-scores outputs); else a
    new one.
    """
    if config.get("run_dir"):
        path = Path(config["run_dir"])
        return path, (path / "run.json").exists()
    saved = Path(config["saved_dir"])
    prefix = f"{config['model']}-{config['dataset']}-"
    fp = fingerprint(config)
    if config.get("resume", True) and saved.is_dir():
        for candidate in sorted(saved.glob(prefix + "*"), reverse=True):
            meta = candidate / "run.json"
            try:
                info = json.loads(meta.read_text())
            except (OSError, ValueError):
                continue
            if info.get("fingerprint") == fp and (info.get("status") != "complete"
                                                  or config.get("stage") == "evaluate"):
                return candidate, True
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = saved / f"{prefix}{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = saved / f"{prefix}{stamp}-{n}"
    return path, False


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temp files of a run that was killed hard (SIGKILL, power loss) are never results."""
    for tmp in run_dir.rglob(".*.tmp*"):
        log.info("removing partial file of an interrupted run: %s", tmp.name)
        tmp.unlink(missing_ok=True)


def write_run_meta(run_dir: Path, config: Config, status: str, extra: dict[str, Any] | None = None) -> None:
    meta = {"fingerprint": fingerprint(config), "status": status, "model": config["model"],
            "dataset": config["dataset"], "updated": dt.datetime.now().isoformat(timespec="seconds"),
            "pid": os.getpid(), **(extra or {})}
    atomic_write_json(run_dir / "run.json", meta)


def preflight(config: Config) -> tuple[Path, bool, list[Pair], Any, list[str]]:
    """Everything that can be wrong before any work, checked without creating a file or importing torch.

    Returns the run folder (not created yet), whether it is resumed, the pairs,
    the model class and the checkpoint names the run loads.
    """
    from talkingface.run import scoring
    from talkingface.run import preflight as check

    flag = "run_dir" if config.get("run_dir") else "saved_dir"
    check.check_output_dir(config.get("run_dir") or config["saved_dir"], flag)
    run_dir, resumed = resolve_run_dir(config)
    dataset = registry.get("dataset", config["dataset"])(config)
    pairs = dataset.pairs()
    model_cls = registry.get("model", config["model"])
    names = list(model_cls.required_checkpoints(config)) if config["stage"] != "evaluate" else []
    if config["stage"] != "generate":
        names += scoring.required_checkpoints(config)
    check.check_checkpoints(config, names)
    check.check_device(config["device"])
    return run_dir, resumed, pairs, model_cls, names


def run(config: Config) -> dict[str, Any]:
    """The whole flow; returns the results dict that was written to results.json.

    The run folder is created only once the pre-flight has passed, so a run
    that stops on bad input leaves nothing a later run could take for its own.
    """
    run_dir, resumed, pairs, model_cls, names = preflight(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    with log_to_file(run_dir / "run.log"):  # this run's log only: detached when the run ends
        return _run(config, run_dir, resumed, pairs, model_cls, names)


def _run(config: Config, run_dir: Path, resumed: bool, pairs: list[Pair], model_cls: Any,
         names: list[str]) -> dict[str, Any]:
    from talkingface.runtime import configure_threads
    from talkingface.run.report import write_results

    log.info("%s run folder %s", "resuming" if resumed else "new", run_dir)
    if resumed:
        remove_stale_temporaries(run_dir)
    atomic_write_text(run_dir / "config.yaml", config.to_yaml())
    atomic_write_json(run_dir / "pairs.json", [p.to_dict() for p in pairs])
    log.info("%d %s pair(s) from dataset %s", len(pairs), config["pairing"], config["dataset"])
    items = [Item(p, run_dir) for p in pairs]
    configure_threads(config)

    from talkingface.run import scoring
    from talkingface.weights.manifest import MIRROR_ENV
    from talkingface.weights.policy import SEEDED_BANNER, choose_weights

    if config.get("checkpoint_mirror"):  # weights=auto downloads through the configured mirror
        os.environ[MIRROR_ENV] = str(config["checkpoint_mirror"])
    weights = choose_weights(config["weights"], names, config["checkpoint_dir"], int(config["seed"]))
    extra = {"weights": weights.describe()}
    write_run_meta(run_dir, config, "running", extra)

    from talkingface.run.execution import clip_executor, execute

    stage = config["stage"]
    records: dict[str, dict[str, Any]] = {}
    if stage in ("generate", "all"):
        records = execute(model_cls, weights, items, config)
    else:
        records = {it.id: r for it in items if (r := read_record(it)) is not None}
    results: dict[str, Any] = {"run_dir": str(run_dir), **extra}
    if weights.seeded:
        results["WARNING"] = SEEDED_BANNER
    if stage in ("evaluate", "all"):
        results.update(scoring.evaluate_run(items, records, config, weights, clip_executor(config)))
    else:
        results.update(summary_only(items, records))
    results["timings"] = stage_timings(records)
    write_results(run_dir, results, config)
    failed = [r for r in records.values() if r.get("status") != "ok"]
    write_run_meta(run_dir, config, "complete" if not failed and len(records) == len(items) else "incomplete",
                   extra)
    return results


def stage_timings(records: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage summed over the items generated (the per-stage summary of a batch)."""
    totals: dict[str, float] = {}
    for record in records.values():
        for stage, seconds in (record.get("timings") or {}).items():
            totals[stage] = round(totals.get(stage, 0.0) + float(seconds), 3)
        if record.get("seconds") is not None:
            totals["item total"] = round(totals.get("item total", 0.0) + float(record["seconds"]), 3)
    return totals


def summary_only(items: list[Item], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = [{"id": it.id, "status": records.get(it.id, {}).get("status", "missing"),
             "error": records.get(it.id, {}).get("error")} for it in items]
    return {"per_clip": rows, "aggregate": {}, "counts": _counts(rows)}


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"succeeded": 0, "failed": 0, "skipped": 0}
    for row in rows:
        key = {"ok": "succeeded", "failed": "failed"}.get(row.get("status"), "skipped")
        counts[key] += 1
    return counts
