"""What every metric takes and gives back.

A metric follows the torchmetrics shape: ``update(...)`` once per clip,
``compute()`` for the aggregate, ``reset()``. What ``update`` takes:

* ``generated``: an :class:`EvalItem` (preferred), or the generated video as a
  path or a decoded :class:`~talkingface.media.video.VideoClip`;
* ``reference``: the reference (ground-truth / source) video, path or clip,
  when ``generated`` is not an :class:`EvalItem`;
* ``audio=``: the driving audio (path, or float32 16 kHz mono array); by default
  the generated video's own sound track, as the reference tools use it;
* ``name=``: the row name.

``skip(name, reason)`` records a clip the metric could not score (the evaluator
calls it when ``update`` raised), so that ``compute()`` counts it.

``update`` returns that clip's row (also kept for :meth:`Metric.rows`): a dict
with ``name``, the metric's values, ``skipped`` (bool) and ``reason`` (why a
clip could not be scored — never dropped silently). Not-applicable values are
``None``. ``compute()`` returns ``dict[str, float]`` (NaN where nothing could
be scored), and ``weights_info`` says which weights produced the numbers.

For scoring clips on several workers: ``clip_state(name)`` is what a clip
leaves beyond its row (LSE: the offset curve; FID: its Inception features) and
the classmethod ``summarise(rows, states)`` is ``compute()`` from rows and
states gathered anywhere, in clip order (the FID distance is only taken there).

Media are decoded through :class:`EvalContext`, shared by the metrics of one
evaluation so that a video is decoded and face-tracked once.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from talkingface.runtime import resolve_device

log = logging.getLogger(__name__)

FPS = 25.0
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class EvalItem:
    """One clip to score: the generated video, its reference video, its driving audio."""

    name: str
    generated: Path | Any  # path or VideoClip
    reference: Path | Any | None = None
    audio: Path | np.ndarray | None = None
    paired: bool = False  # the reference is ground truth for the generated frames (PSNR/SSIM apply)

    @classmethod
    def from_generation(cls, name: str, result: Mapping[str, Any], paired: bool = False) -> "EvalItem":
        """From a model's ``generate`` output ``{"generated_video", "real_video", "audio"}``."""
        return cls(name, Path(result["generated_video"]),
                   Path(result["real_video"]) if result.get("real_video") else None,
                   Path(result["audio"]) if result.get("audio") else None, paired)


class SkipClip(Exception):
    """A clip that cannot be scored by one metric; the message is the per-clip reason."""


@runtime_checkable
class Metric(Protocol):
    name: str

    def update(self, generated: Any, reference: Any = None, **kw: Any) -> dict[str, Any]: ...

    def compute(self) -> dict[str, float]: ...

    def reset(self) -> None: ...

    def rows(self) -> list[dict[str, Any]]: ...

    def skip(self, name: str, reason: str) -> dict[str, Any]: ...

    def clip_state(self, name: str) -> dict[str, Any]: ...

    @property
    def weights_info(self) -> dict[str, Any]: ...


class BaseMetric:
    """A metric that carries its own facts; subclass it, register it, and every table reads it from here.

    What the rest of the toolkit asks a metric class, never a table elsewhere:

    * ``columns``: the per-clip values of its row (``None`` when the clip was not scored);
    * ``labels``: aggregate key -> the label of its row in the results table;
    * ``cache_keys``: the config keys that change a clip's values (the key of
      stored per-clip scores: change one and the clip is scored again);
    * ``settings``: further config keys recorded with the results (batch sizes...);
    * ``networks``: the checkpoint files (manifest names) it loads; with
      ``crop_key`` (the config key that says ``face`` or ``frame``) the face
      detector's file joins them when it crops faces: :meth:`checkpoints`;
    * :meth:`applies`: whether it gives numbers under this config (PSNR/SSIM:
      only paired); ``needs_reference`` / ``needs_audio``: what each clip must have;
    * ``update`` / ``compute`` (the torchmetrics shape), ``summarise`` (compute
      from rows scored anywhere), :meth:`aggregate` and :meth:`report` (its
      entries in the aggregate and in the results table).

    A new metric is one file with a subclass under ``@register("metric", name)``
    and one line in :data:`talkingface.registry._BUILTINS` (or an import of that file).
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    labels: dict[str, str] = {}
    cache_keys: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    crop_key: str | None = None
    needs_reference: bool = False
    needs_audio: bool = False

    # ------------------------------------------------------------------ facts (no instance needed)
    @classmethod
    def applies(cls, config: Mapping[str, Any]) -> bool:
        """Whether this config gives this metric numbers at all (else every clip is "not applicable")."""
        return True

    @classmethod
    def crops_faces(cls, config: Mapping[str, Any]) -> bool:
        return cls.crop_key is not None and cls.applies(config) and config.get(cls.crop_key, "frame") == "face"

    @classmethod
    def checkpoints(cls, config: Mapping[str, Any]) -> list[str]:
        """The checkpoint files (manifest names) scoring with this config loads: the pre-flight's list."""
        names = list(cls.networks)
        if cls.crops_faces(config) and config.get("lse_detector") == "s3fd":
            names.append("syncnet_s3fd")  # every face crop of the metrics comes from `lse_detector`
        return names

    @classmethod
    def summarise(cls, rows: list[dict[str, Any]], states: list[dict[str, Any]] | None = None) -> dict[str, float]:
        """:meth:`compute` from per-clip rows scored anywhere: mean/std of each column over the scored clips."""
        scored = [r for r in rows if not r["skipped"]]
        out: dict[str, float] = {}
        for key in cls.labels:
            out[key], out[f"{key}_std"] = mean_std([r.get(key) for r in scored])
        out[f"{cls.name}_n"] = float(len(scored))
        out[f"{cls.name}_skipped"] = float(len(rows) - len(scored))
        return out

    @classmethod
    def aggregate(cls, computed: Mapping[str, float], config: Mapping[str, Any]) -> dict[str, Any]:
        """Its entries of the evaluation aggregate: ``{key: {mean, std, n, skipped}}`` per labelled key."""
        return {key: {"mean": computed[key], "std": computed.get(f"{key}_std"),
                      "n": int(computed.get(f"{cls.name}_n", 0)),
                      "skipped": int(computed.get(f"{cls.name}_skipped", 0))}
                for key in cls.labels if key in computed}

    @classmethod
    def report(cls, aggregate: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Its rows of the results table: ``{label: {mean, std, count, note}}``."""
        out: dict[str, dict[str, Any]] = {}
        for key, label in cls.labels.items():
            agg = aggregate.get(key)
            if not isinstance(agg, dict):
                continue
            note = ""
            if not cls.applies(config):
                note = cls.not_applicable_note()
            elif agg.get("skipped"):
                # not "skipped": that word counts items never generated in the summary line
                note = f"{agg['skipped']} clip(s) not scored by this metric (reason per clip)"
            out[label] = {"mean": _finite_or_none(agg.get("mean")), "std": _finite_or_none(agg.get("std")),
                          "count": agg.get("n"), "note": note}
        return out

    @classmethod
    def not_applicable_note(cls) -> str:
        return "not applicable"

    # ------------------------------------------------------------------ one evaluation
    def __init__(self, config: Mapping[str, Any] | None = None, *, context: "EvalContext | None" = None,
                 device: str | None = None) -> None:
        self.context = context or EvalContext(config, device)
        self._rows: list[dict[str, Any]] = []

    @property
    def weights_info(self) -> dict[str, Any]:
        return {"weights": "none"}

    def reset(self) -> None:
        self._rows.clear()

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def score(self, item: EvalItem) -> dict[str, Any]:
        """One clip's values ``{column: value}`` (raise :class:`SkipClip` with the reason when it cannot)."""
        raise NotImplementedError(f"{type(self).__name__} must implement score() or update()")

    def update(self, generated: Any, reference: Any = None, **kw: Any) -> dict[str, Any]:
        item = as_item(generated, reference, audio=kw.get("audio"), name=kw.get("name"), paired=kw.get("paired"))
        if self.needs_reference and item.reference is None:
            return self.skip(item.name, f"no reference video: {self.name} needs one")
        try:
            values = self.score(item)
        except SkipClip as skip:
            return self.skip(item.name, str(skip))
        out = row(item.name, {k: values.get(k) for k in self.columns}, None,
                  **{k: v for k, v in values.items() if k not in self.columns})
        self._rows.append(out)
        return out

    def skip(self, name: str, reason: str) -> dict[str, Any]:
        """Record a clip without values (also used by the evaluator when ``update`` raised)."""
        out = row(name, {k: None for k in self.columns}, reason)
        self._rows.append(out)
        return out

    def clip_state(self, name: str) -> dict[str, Any]:
        return {}

    def compute(self) -> dict[str, float]:
        return self.summarise(self._rows)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and np.isnan(value) else value


def as_item(generated: Any, reference: Any = None, *, audio: Any = None, name: str | None = None,
            paired: bool | None = None) -> EvalItem:
    if isinstance(generated, EvalItem):
        item = generated
        if reference is not None or audio is not None or paired is not None:
            item = EvalItem(name or item.name, item.generated, reference if reference is not None else item.reference,
                            audio if audio is not None else item.audio,
                            item.paired if paired is None else paired)
        return item
    if name is None:
        source = getattr(generated, "path", None) if hasattr(generated, "frames") else generated
        name = Path(source).stem if isinstance(source, (str, Path)) else "clip"
    return EvalItem(name, generated, reference, audio, bool(paired))


class EvalContext:
    """Config, device and small caches shared by the metrics of one evaluation."""

    def __init__(self, config: Mapping[str, Any] | None = None, device: str | None = None,
                 cache_size: int = 2, detector: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        from talkingface.evaluation.defaults import with_defaults

        self.config: dict[str, Any] = with_defaults(config)
        self.device = resolve_device(device or self.config.get("device", "cpu"))
        # SyncNet's windows (640 samples, 4 MFCC steps per frame) assume 25 fps: every video is
        # resampled to it, whatever rate generation used (the reference tools silently assume 25).
        self.fps = FPS
        self._videos: OrderedDict[Any, Any] = OrderedDict()
        self._memo: dict[tuple, Any] = {}
        self._cache_size = cache_size
        self._detector = detector  # frame RGB -> (K, 5) boxes; built from config when None

    # ------------------------------------------------------------------ media
    def video(self, source: Any):
        """A :class:`VideoClip` at the evaluation fps (decoded once per path)."""
        if hasattr(source, "frames"):
            return self._at_fps(source)
        key = str(source)
        if key in self._videos:
            self._videos.move_to_end(key)
            return self._videos[key]
        from talkingface.media.video import read_video

        clip = read_video(source, fps=self.fps)
        self._videos[key] = clip
        while len(self._videos) > self._cache_size:
            evicted, _ = self._videos.popitem(last=False)
            self._memo = {k: v for k, v in self._memo.items() if k[1] != evicted}
        return clip

    def _at_fps(self, clip: Any):
        """A decoded clip at another rate is resampled like files are (nearest frame in time)."""
        fps = float(getattr(clip, "fps", self.fps) or self.fps)
        if abs(fps - self.fps) < 1e-3:
            return clip
        key = ("resampled", id(clip))
        if key not in self._memo:
            from talkingface.media.video import VideoClip, resample_indices

            index = resample_indices(np.arange(clip.frames.shape[0]) / fps, fps, self.fps)
            self._memo[key] = (clip, VideoClip(clip.frames[index], self.fps, getattr(clip, "path", None), fps))
        return self._memo[key][1]

    def audio(self, source: Any) -> np.ndarray:
        """Float32 16 kHz mono from a path (a wav or a video's sound track) or an array."""
        if isinstance(source, np.ndarray):
            return source
        from talkingface.media.audio import load_audio

        return load_audio(source, sample_rate=SAMPLE_RATE)

    def memo(self, kind: str, source: Any, make: Callable[[], Any]) -> Any:
        """Per-video derived data (face tracks, ...), dropped with the decoded video."""
        key = (kind, str(source) if not hasattr(source, "frames") else id(source))
        if key not in self._memo:
            self._memo[key] = (source, make())  # holding the source keeps its id() from being reused
        return self._memo[key][1]

    # ------------------------------------------------------------------ faces
    def detector(self):
        if self._detector is None:
            from talkingface.evaluation.lse_crop import make_detector

            name = self.config["lse_detector"]
            kwargs = {}
            if name == "s3fd":
                mode, path = resolve_weights(self.config, "syncnet_s3fd")
                kwargs = dict(path=path, weights=mode, seed=int(self.config.get("seed", 0)),
                              scale=float(self.config["lse_facedet_scale"]))
            self._detector = make_detector(name, str(self.device), **kwargs)
        return self._detector

    def detections(self, source: Any):
        """Face detections on every frame of a video (cached)."""
        from talkingface.evaluation.lse_crop import detect_all

        return self.memo("detections", source, lambda: detect_all(self.video(source).frames, self.detector()))


def weights_mode(config: Mapping[str, Any]) -> str:
    """``official`` or ``seeded`` (``auto`` was resolved by the runner; alone it means official-if-present)."""
    mode = str(config.get("weights", "official"))
    return "seeded" if mode == "seeded" else ("auto" if mode == "auto" else "official")


def resolve_weights(config: Mapping[str, Any], checkpoint: str) -> tuple[str, Path | None]:
    """(``"official"``, path) or (``"seeded"``, None) for one metric network.

    ``auto`` uses the file when present and falls back to seeded weights loudly.
    """
    mode = weights_mode(config)
    if mode == "seeded":
        return "seeded", None
    from talkingface.weights.manifest import checkpoint_path, find_checkpoint

    root = config.get("checkpoint_dir")
    if mode == "auto":
        found = find_checkpoint(checkpoint, root)
        if found is None:
            log.warning("!!! %s: official file missing; using SEEDED weights - metric values are meaningless",
                        checkpoint)
            return "seeded", None
        return "official", found
    return "official", checkpoint_path(checkpoint, root)


def row(name: str, values: Mapping[str, Any], reason: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **values, "skipped": reason is not None, "reason": reason}
    out.update(extra)
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population std over scored clips (NaN when none).

    An infinite value (PSNR of identical clips) makes the mean infinite and the std NaN.
    """
    present = [v for v in values if v is not None]
    if not present:
        return float("nan"), float("nan")
    arr = np.asarray(present, dtype=np.float64)
    if not np.isfinite(arr).all():
        return float(arr.sum()), float("nan")
    return float(arr.mean()), float(arr.std())
