"""Score a list of clips with several metrics: per-clip rows plus an aggregate.

:class:`ClipScorer` scores one clip at a time (the metric networks loaded
once; it runs in-process or on each Ray worker), :func:`clip_row` makes a
clip's row and :func:`aggregate_scores` the aggregate from every clip's scores,
wherever they were computed. :func:`evaluate_pairs` chains them in-process;
the runner and ``python -m talkingface evaluate`` go through
:func:`talkingface.run.scoring.score_tasks` (workers, stored per-clip scores). One
bad clip never stops the batch: each metric's failure on a clip becomes that
clip's reason for that metric. The aggregate records which weights produced
the numbers (file + sha256, or seeded).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkingface.atomic import safe_file_name
from talkingface.errors import TalkingFaceError
from talkingface.evaluation.base import EvalContext, EvalItem, Metric
from talkingface.registry import get as registry_get

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("lse", "fid", "psnr", "ssim")
NOT_APPLICABLE = "not applicable"
#: config keys recorded with every evaluation, whichever metrics ran (each metric adds its own)
COMMON_KEYS = ("pairing", "fps", "weights", "device")


def metric_class(name: str) -> Any:
    """The registered metric class: its ``columns``, ``cache_keys``, ``checkpoints()``... are the only tables."""
    return registry_get("metric", name)


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
    return safe_file_name(name, 120)


@dataclass
class ClipScore:
    """One metric's result on one clip: its row, and what the aggregate needs beyond it.

    ``state``: the metric's ``clip_state`` (LSE: offset curve, FID: Inception
    features); ``weights``: the metric's ``weights_info``; ``plot``: the clip's
    sync-offset PNG (LSE, when plots are on); ``transient``: the metric crashed
    (not a property of the clip: worth scoring again on the next run).
    """

    metric: str
    row: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    plot: str | None = None
    transient: bool = False


class ClipScorer:
    """The metric networks, loaded once; scores clips one at a time and keeps nothing between them.

    This is the unit that runs wherever clips are scored (in-process, or one per
    Ray worker); :func:`aggregate_scores` turns the scores of all clips into the
    aggregate wherever they are gathered.
    """

    def __init__(self, metrics: Sequence[str], config: Mapping[str, Any] | None = None,
                 instances: Mapping[str, Metric] | None = None) -> None:
        self.config = dict(config or {})
        self.instances = dict(instances) if instances is not None else build_metrics(list(metrics), self.config)
        self.names = list(self.instances)

    @property
    def weights(self) -> dict[str, dict[str, Any]]:
        return {name: metric.weights_info for name, metric in self.instances.items()}

    def score(self, item: EvalItem, only: Sequence[str] | None = None,
              plots_dir: str | Path | None = None) -> dict[str, ClipScore]:
        """``{metric: ClipScore}`` of one clip (``only``: a subset of the metrics)."""
        out: dict[str, ClipScore] = {}
        for name in self.names:
            if only is not None and name not in only:
                continue
            metric = self.instances[name]
            transient = False
            try:
                result = metric.update(item)
            except Exception as exc:  # keep the batch going; the reason names the error
                reason = exc.message if isinstance(exc, TalkingFaceError) else f"error: {type(exc).__name__}: {exc}"
                if not isinstance(exc, TalkingFaceError):
                    log.exception("%s: %s raised", item.name, name)
                    transient = True
                result = metric.skip(item.name, reason) if hasattr(metric, "skip") else \
                    {"skipped": True, "reason": reason}
            state = metric.clip_state(item.name) if hasattr(metric, "clip_state") else {}
            score = ClipScore(name, result, state, metric.weights_info, transient=transient)
            if plots_dir is not None and state.get("curve") is not None:
                score.plot = write_sync_plot(item.name, state["curve"], self.config, plots_dir)
            out[name] = score
            if hasattr(type(metric), "summarise"):
                metric.reset()  # a worker scores thousands of clips: state leaves with the ClipScore
        return out


def write_sync_plot(name: str, curve: Sequence[float], config: Mapping[str, Any], plots_dir: str | Path) -> str:
    from talkingface.evaluation.lse import plot_offset_curve

    return str(plot_offset_curve(np.asarray(curve), int(config.get("vshift", 15)),
                                 Path(plots_dir) / f"{_safe_name(name)}_sync.png", title=name))


def clip_row(item: EvalItem, scores: Mapping[str, ClipScore], names: Sequence[str]) -> dict[str, Any]:
    """The per-clip row of the results from each metric's :class:`ClipScore` (in ``names`` order)."""
    merged: dict[str, Any] = {"name": item.name, "generated": _path(item.generated),
                              "reference": _path(item.reference), "audio": _path(item.audio)}
    reasons: dict[str, str] = {}
    present = [name for name in names if name in scores]
    for name in present:
        result = scores[name].row
        for key in metric_class(name).columns:
            merged.setdefault(key, result.get(key))
        for key, value in result.items():
            if key not in ("name", "skipped", "reason") and key not in merged:
                merged[key] = value
        if result.get("skipped"):
            reasons[name] = str(result.get("reason"))
    failures = [m for m, why in reasons.items() if not why.startswith(NOT_APPLICABLE)]
    applicable = [m for m in present if not reasons.get(m, "").startswith(NOT_APPLICABLE)]
    merged["reasons"] = reasons
    merged["status"] = "ok" if not failures else ("failed" if len(failures) == len(applicable) else "partial")
    for name in present:
        if scores[name].plot:
            merged[f"{name}_plot"] = scores[name].plot  # lse_plot: the sync-offset curve
    return merged


def evaluate_pairs(items: Iterable[EvalItem | Mapping[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS,
                   config: Mapping[str, Any] | None = None, *, device: str | None = None,
                   plots_dir: str | Path | None = None, instances: Mapping[str, Metric] | None = None,
                   ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score every item with every metric, in this process.

    ``items``: :class:`EvalItem` or ``{"generated_video", "real_video", "audio", "name"|"id"}``
    mappings (a model's ``generate`` output). ``config``: the run config (keys
    in the metrics' ``cache_keys`` and ``settings``). ``instances`` replaces the registry lookup (tests,
    preloaded networks; they are left reset). With ``plots_dir``, a sync-offset
    curve PNG per clip. (Batches on Ray workers, resumable per clip:
    :func:`talkingface.run.scoring.score_tasks`.)

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
    scorer = ClipScorer(list(metrics), config, instances)
    rows: list[dict[str, Any]] = []
    scores: list[dict[str, ClipScore]] = []
    for index, entry in enumerate(items):
        item = _as_item(entry, index, paired)
        clip_scores = scorer.score(item, plots_dir=plots_dir)
        rows.append(clip_row(item, clip_scores, scorer.names))
        scores.append(clip_scores)
    if not all(hasattr(type(m), "summarise") for m in scorer.instances.values()):
        return rows, aggregate(rows, scorer.instances, config)  # a metric that can only compute() itself
    return rows, aggregate_scores(scorer.names, rows, scores, config, scorer.weights,
                                  {name: type(m) for name, m in scorer.instances.items()})


def _path(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "frames"):
        return str(getattr(value, "path", None) or "<array>")
    if hasattr(value, "shape"):
        return "<array>"
    return str(value)


def aggregate_scores(names: Sequence[str], rows: list[dict[str, Any]], scores: Sequence[Mapping[str, ClipScore]],
                     config: Mapping[str, Any], weights: Mapping[str, dict[str, Any]] | None = None,
                     classes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The aggregate from every clip's scores, in clip order (FID: one distance over all clips' features).

    ``weights``: per metric; taken from the scores when absent (clips scored elsewhere or earlier).
    ``classes``: metric classes by name (default: the registry's).
    """
    computed: dict[str, dict[str, float]] = {}
    found: dict[str, dict[str, Any]] = dict(weights or {})
    for name in names:
        mine = [s[name] for s in scores if name in s]
        cls = (classes or {}).get(name) or registry_get("metric", name)
        computed[name] = cls.summarise([s.row for s in mine], [s.state for s in mine])
        if name not in found:
            found[name] = next((s.weights for s in mine if s.weights), {"weights": "unknown"})
    return _aggregate(rows, computed, found, config, classes)


def aggregate(rows: list[dict[str, Any]], instances: Mapping[str, Metric],
              config: Mapping[str, Any]) -> dict[str, Any]:
    """The aggregate from metric objects that saw every clip (their ``compute()``)."""
    return _aggregate(rows, {name: m.compute() for name, m in instances.items()},
                      {name: m.weights_info for name, m in instances.items()}, config,
                      {name: type(m) for name, m in instances.items()})


def _aggregate(rows: list[dict[str, Any]], computed_by_metric: Mapping[str, dict[str, float]],
               weights: Mapping[str, dict[str, Any]], config: Mapping[str, Any],
               classes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    classes = {name: (classes or {}).get(name) or metric_class(name) for name in computed_by_metric}
    for name, computed in computed_by_metric.items():
        cls = classes[name]
        if hasattr(cls, "aggregate"):
            out.update(cls.aggregate(computed, config))
        else:  # a bare Metric-protocol object: its compute() keys as they are
            out.update({key: {"mean": value} for key, value in computed.items()})
    weights = {name: dict(weights.get(name, {})) for name in computed_by_metric}
    out["weights"] = weights
    if any(info.get("weights") == "seeded" for info in weights.values()):
        from talkingface.weights.policy import SEEDED_BANNER

        out["warning"] = SEEDED_BANNER
    failed = sum(1 for r in rows if r["status"] == "failed")
    out["clips"] = {"total": len(rows), "failed": failed, "partial": sum(1 for r in rows if r["status"] == "partial"),
                    "all_failed": bool(rows) and failed == len(rows)}
    out["config"] = {k: config[k] for k in recorded_keys(classes.values()) if k in config}
    return out


def recorded_keys(extra: Iterable[Any] = ()) -> tuple[str, ...]:
    """The config keys recorded with an evaluation: every registered metric's ``cache_keys`` and
    ``settings`` (whichever ran, so results of different metric sets stay comparable) and the common ones."""
    from talkingface.registry import known

    classes = [*(metric_class(name) for name in known("metric")), *extra]
    keys = [k for cls in classes for k in (*getattr(cls, "cache_keys", ()), *getattr(cls, "settings", ()))]
    return tuple(dict.fromkeys([*keys, *COMMON_KEYS]))


def metric_entries(names: Sequence[str]) -> set[str]:
    """The aggregate keys the metrics' own entries use (the rest of the aggregate describes the evaluation)."""
    return {key for name in names for key in metric_class(name).labels}


def table_rows(aggregate: Mapping[str, Any], config: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Evaluator aggregate -> ``{label: {mean, std, count, note}}``, each metric's rows in ``names`` order."""
    out: dict[str, Any] = {}
    for name in names:
        out.update(metric_class(name).report(aggregate, config))
    return out


def report_columns(names: Sequence[str] | None = None) -> dict[str, str]:
    """Table label -> the per-clip column its MEAN / STD rows go in (every registered metric by default)."""
    from talkingface.registry import known

    return {label: key for name in (known("metric") if names is None else names)
            for key, label in metric_class(name).labels.items()}
