"""Glue between the runner's items and the metrics of :mod:`talkingface.evaluation`.

Scoring a batch (:func:`score_tasks`, used by the runner's evaluate stage and by
``python -m talkingface evaluate``) is split in two:

* per clip, wherever it runs (in-process, or on Ray actors that load the metric
  networks once each): LSE-C/LSE-D, PSNR/SSIM and the clip's Inception features,
  each metric's result written at once to ``scores/<clip>.<metric>.json`` (+
  ``.npz`` for features), atomically, under a key of everything that changes it
  (the metric's config keys, the weights, the input files' size and mtime);
* in the driver: the per-clip rows, the means, and FID, which needs the
  features of every clip together.

A re-run finds the scores whose key still matches and scores only the rest.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkingface.atomic import safe_file_name
from talkingface.config import Config

log = logging.getLogger(__name__)

def metric_classes(names: Any) -> dict[str, Any]:
    """The registered metric classes by name: every per-metric fact below is read from them."""
    from talkingface.registry import get

    return {name: get("metric", name) for name in names}


def required_checkpoints(config: Config) -> list[str]:
    """The checkpoint files scoring with this config loads (each metric's ``checkpoints(config)``); no torch."""
    names: list[str] = []
    for cls in metric_classes(config.get("metrics", [])).values():
        names += cls.checkpoints(config)
    return list(dict.fromkeys(names))


def eval_config(config: Config, weights: Any) -> dict[str, Any]:
    """The run config with the weights mode already resolved by the pre-flight."""
    out = dict(config)
    out["weights"] = "seeded" if getattr(weights, "seeded", False) else "official"
    return out


def table_aggregate(aggregate: dict[str, Any], pairing: str,
                    metrics: Any = ("lse", "fid", "psnr", "ssim")) -> dict[str, Any]:
    """Evaluator aggregate -> ``{label: {mean, std, count, note}}`` for the report table (each metric's ``report``)."""
    from talkingface.evaluation.evaluator import table_rows

    return table_rows(aggregate, {**(aggregate.get("config") or {}), "pairing": pairing}, list(metrics))


def evaluation_info(aggregate: dict[str, Any], metrics: Any) -> dict[str, Any]:
    """The aggregate less the metrics' own entries: how the evaluation ran (weights, clips, config)."""
    from talkingface.evaluation.evaluator import metric_entries

    own = metric_entries(list(metrics))
    return {k: v for k, v in aggregate.items() if k not in own}


def evaluate_run(items: list, records: dict[str, dict[str, Any]], config: Config, weights: Any,
                 executor: ClipExecutor | None = None) -> dict[str, Any]:
    tasks = []
    for item in items:
        record = records.get(item.id)
        if record and record.get("status") == "ok":
            tasks.append(ScoreTask.from_record(item.id, record, item.pair.paired, config))
    run_dir = Path(items[0].run_dir) if items else None
    plots = run_dir / "plots" if run_dir is not None and config.get("plots", True) else None
    rows, aggregate = ([], {})
    if tasks:
        log.info("evaluating %d clip(s) with %s", len(tasks), ", ".join(config["metrics"]))
        rows, aggregate = score_tasks(tasks, eval_config(config, weights), store=ScoreStore(run_dir / "scores"),
                                      plots_dir=plots, executor=executor)
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
    return {"per_clip": per_clip,
            "aggregate": table_aggregate(aggregate, config.get("pairing", "unpaired"), config["metrics"]),
            "evaluation": evaluation_info(aggregate, config["metrics"]), "counts": counts}


# ---------------------------------------------------------------------------- per-clip scoring, resumable

#: bump when a metric's per-clip output changes meaning: older score records are then redone
SCORES_VERSION = 1


@dataclass(frozen=True)
class ScoreTask:
    """One clip to score, by path only (cheap to send to a worker; decoded where it is scored).

    ``reference_frames``: keep only the first frames of the reference, read at
    ``fps`` (a run cut to ``max_seconds`` generated only those).
    """

    id: str
    generated: Path
    reference: Path | None = None
    audio: Path | None = None
    paired: bool = False
    reference_frames: int | None = None
    fps: float = 25.0

    @classmethod
    def from_record(cls, item_id: str, record: dict[str, Any], paired: bool, config: Config) -> "ScoreTask":
        keep = None
        if config.get("max_seconds"):
            keep = max(1, int(round(float(config["max_seconds"]) * float(config["fps"]))))
        return cls(item_id, _absolute(record["generated_video"]), _absolute(record.get("real_video")),
                   _absolute(record.get("audio")), paired, keep, float(config["fps"]))

    @classmethod
    def from_eval_item(cls, item: Any) -> "ScoreTask":
        return cls(item.name, _absolute(item.generated), _absolute(item.reference), _absolute(item.audio),
                   bool(item.paired))

    def display_item(self) -> Any:
        """The clip as the results name it (paths, nothing decoded)."""
        from talkingface.evaluation.base import EvalItem

        return EvalItem(self.id, self.generated, self.reference, self.audio, self.paired)

    def eval_item(self) -> Any:
        """The clip as the metrics take it: the reference cut to ``reference_frames`` when set."""
        from talkingface.evaluation.base import EvalItem

        reference: Any = self.reference
        if reference is not None and self.reference_frames:
            from talkingface.media import VideoClip, read_video

            try:
                clip = read_video(reference, self.fps)
                reference = VideoClip(clip.frames[:self.reference_frames], clip.fps, self.reference,
                                      clip.source_fps, clip.info)
            except Exception as exc:  # the metrics read it again and give the per-clip reason
                log.debug("%s: reference not cut (%s)", self.id, exc)
        return EvalItem(self.id, self.generated, reference, self.audio, self.paired)

    def inputs(self) -> dict[str, Any]:
        """What the scores of this clip depend on, file-wise (a regenerated video has a new mtime)."""
        return {"generated": _stat(self.generated), "reference": _stat(self.reference), "audio": _stat(self.audio),
                "paired": self.paired, "reference_frames": self.reference_frames,
                "fps": self.fps if self.reference_frames else None}


def _absolute(path: Any) -> Path | None:
    if path is None or path == "":
        return None
    return Path(os.path.abspath(os.fspath(path)))  # workers may run elsewhere than the driver's cwd


def _stat(path: Path | None) -> list[Any] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def _weights_identity(metric: str, config: Config) -> Any:
    """The weights a metric's numbers depend on: the files it loads (size + mtime), or the seed of seeded ones.

    A metric that loads no file (PSNR/SSIM on whole frames) depends on no weights at all.
    """
    from talkingface.weights.manifest import find_checkpoint

    names = metric_classes([metric])[metric].checkpoints(config)
    if not names:
        return None
    if config.get("weights") == "seeded":
        return {"seeded": int(config.get("seed", 0))}
    files = {}
    for name in names:
        path = find_checkpoint(name, config.get("checkpoint_dir"))
        files[name] = _stat(path) if path is not None else None
    return {"official": files}


def score_key(metric: str, task: ScoreTask, config: Config) -> str:
    """Everything that changes ``metric``'s result on ``task`` (not batch sizes, device, worker count)."""
    keys = metric_classes([metric])[metric].cache_keys
    data = {"version": SCORES_VERSION, "metric": metric, "config": {k: config.get(k) for k in keys},
            "weights": _weights_identity(metric, config), "inputs": task.inputs()}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ScoreStore:
    """Per-clip, per-metric score records in one folder (shared by every worker of a batch).

    ``<clip>.<metric>.json`` holds the row, the small state, the weights and the
    key; array state (FID features) goes to ``<clip>.<metric>.npz``, written
    first and carrying the same key, so a record is only ever read whole.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(os.path.abspath(os.fspath(root)))

    def _base(self, clip: str, metric: str) -> Path:
        safe = safe_file_name(clip, 150)
        if safe != clip:  # keep names that differ only in odd characters apart
            safe += "-" + hashlib.sha1(clip.encode()).hexdigest()[:8]
        return self.root / f"{safe}.{metric}"

    def load(self, clip: str, metric: str, key: str) -> Any:
        """The stored :class:`ClipScore` when its key matches, else None."""
        from talkingface.evaluation.evaluator import ClipScore

        base = self._base(clip, metric)
        try:
            record = json.loads(base.with_name(base.name + ".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record.get("key") != key or record.get("id") != clip:
            return None
        state = dict(record.get("state") or {})
        if record.get("arrays"):
            try:
                with np.load(base.with_name(base.name + ".npz"), allow_pickle=False) as data:
                    if str(data["key"]) != key:
                        return None
                    state.update({name: data[name] for name in record["arrays"]})
            except (OSError, ValueError, KeyError):
                return None
        plot = record.get("plot")
        return ClipScore(metric, record["row"], state, record.get("weights") or {}, plot)

    def save(self, clip: str, metric: str, key: str, score: Any) -> None:
        from talkingface.atomic import atomic_path, atomic_write_json

        base = self._base(clip, metric)
        arrays = {k: v for k, v in score.state.items() if isinstance(v, np.ndarray)}
        if arrays:
            with atomic_path(base.with_name(base.name + ".npz")) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, key=np.array(key), **arrays)
        record = {"id": clip, "metric": metric, "key": key, "row": score.row,
                  "state": {k: v for k, v in score.state.items() if k not in arrays}, "arrays": sorted(arrays),
                  "weights": score.weights, "plot": score.plot}
        atomic_write_json(base.with_name(base.name + ".json"), record)


def score_one(scorer: Any, task: ScoreTask, metrics: list[str], keys: dict[str, str], store: ScoreStore | None,
              plots_dir: str | Path | None) -> dict[str, Any]:
    """Score one clip with some metrics and write each result to the store at once (the unit a worker runs)."""
    scores = scorer.score(task.eval_item(), only=metrics, plots_dir=plots_dir)
    if store is not None:
        for name, score in scores.items():
            if not score.transient:  # a crash is retried on the next run, a bad clip is not
                store.save(task.id, name, keys[name], score)
    return scores


def lost_score(metric: str, clip: str, reason: str) -> Any:
    """A clip a worker never returned (it died): skipped with the reason, not stored, redone next run."""
    from talkingface.evaluation.base import row
    from talkingface.evaluation.evaluator import ClipScore

    return ClipScore(metric, row(clip, {k: None for k in metric_classes([metric])[metric].columns}, reason),
                     transient=True)


#: scores the missing metrics of clips: ``(todo, metrics, keys, config, store, plots_dir) -> {clip: {metric: score}}``
ClipExecutor = Callable[..., dict[str, dict[str, Any]]]


def score_tasks(tasks: list[ScoreTask], config: Config | dict[str, Any], *, store: ScoreStore | None = None,
                plots_dir: str | Path | None = None,
                executor: ClipExecutor | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(rows, aggregate)`` of :func:`~talkingface.evaluation.evaluator.evaluate_pairs` for a batch.

    Clips are scored by ``executor``: in-process when None (Ray never
    imported), or on Ray actors (:func:`talkingface.run.execution.clip_executor`
    picks it from ``num_workers``); either way every metric's per-clip result
    goes to ``store`` as soon as it exists, and results already there (same
    key) are reused unless ``resume`` is false. The aggregate is taken here, in
    clip order, so it does not depend on which worker scored what.
    """
    from talkingface.evaluation.evaluator import (
        aggregate_scores,
        clip_row,
        write_sync_plot,
    )

    names = list(config["metrics"])
    keys = {task.id: {name: score_key(name, task, config) for name in names} for task in tasks}
    done: dict[str, dict[str, Any]] = {task.id: {} for task in tasks}
    todo: list[tuple[ScoreTask, list[str]]] = []
    reuse = store is not None and config.get("resume", True)
    for task in tasks:
        for name in names:
            cached = store.load(task.id, name, keys[task.id][name]) if reuse else None
            if cached is not None:
                done[task.id][name] = cached
        missing = [name for name in names if name not in done[task.id]]
        if missing:
            todo.append((task, missing))
    reused = sum(len(v) for v in done.values())
    if reused:
        log.info("evaluate: %d clip score(s) reused from %s, %d clip(s) to score", reused, store.root, len(todo))
    if todo:
        needed = [name for name in names if any(name in missing for _, missing in todo)]
        new = (executor or score_in_process)(todo, needed, keys, config, store, plots_dir)
        for clip, scores in new.items():
            done[clip].update(scores)
    rows, scores = [], []
    for task in tasks:
        clip_scores = done[task.id]
        lse = clip_scores.get("lse")
        if plots_dir is not None and lse is not None and lse.state.get("curve") is not None and \
                not (lse.plot and Path(lse.plot).is_file()):
            lse.plot = write_sync_plot(task.id, lse.state["curve"], config, plots_dir)  # scored with plots off
        rows.append(clip_row(task.display_item(), clip_scores, names))
        scores.append(clip_scores)
    return rows, aggregate_scores(names, rows, scores, config)


def score_in_process(todo: list[tuple[ScoreTask, list[str]]], metrics: list[str], keys: dict[str, dict[str, str]],
                      config: Config | dict[str, Any], store: ScoreStore | None,
                      plots_dir: str | Path | None) -> dict[str, dict[str, Any]]:
    from tqdm import tqdm

    from talkingface.evaluation.evaluator import ClipScorer

    scorer = ClipScorer(metrics, config)
    out: dict[str, dict[str, Any]] = {}
    with tqdm(total=len(todo), desc="evaluate", unit="clip", dynamic_ncols=True) as bar:
        for task, missing in todo:
            out[task.id] = score_one(scorer, task, missing, keys[task.id], store, plots_dir)
            bar.update(1)
    return out
