"""The pipeline's options: resolved from the config once, preset applied, files they need.

Everything that decides *which* files the pipeline loads is computed here from
the resolved options (:func:`checkpoint_names`), so the pre-flight check of a
run and the loaders of :mod:`~talkingface.models.video_retalking.face_parts`
cannot disagree: the builder asks :class:`CheckpointFiles` for every file, and a
test holds the two lists equal for each option combination.

``compat: reference`` is the one place that says which keys reproduce the
official ``inference.py`` (:data:`REFERENCE_PRESET`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkingface.errors import ConfigError

log = logging.getLogger(__name__)

#: the seeded-run stand-ins (see :mod:`talkingface.models.video_retalking.stand_ins`)
STAND_INS = ("boxes", "five_points", "parsing")

#: ``compat: reference``: the official inference.py, as closely as its own nondeterminism allows.
#: Every key a user could set to something else that changes an output frame is listed.
REFERENCE_PRESET: dict[str, Any] = {
    "landmarks": "fan",            # face-alignment's 2DFAN4 on S3FD boxes (stage 1 and the references)
    "landmark_gaps": "previous",   # frames before the first landmark detection: the "no face" marker
    "face_detector": "s3fd",       # L-Net face boxes: face_detection's S3FD
    "face_select": None,           # the best-scoring face in every stage and frame
    "enhancer": "gpen",            # GPEN references + GFPGAN restoration
    "compose": "official",         # re-detect + re-parse, whole-frame 512 px blends
    "resample_fps": False,         # keep the input frame rate
    "noise": "fresh",              # E-Net and GFPGAN draw unseeded noise on every call
    "precision": "fp32",
}

#: option values accepted by the keys this module checks (the schema checks types)
CHOICES: dict[str, tuple[Any, ...]] = {
    "landmarks": ("fan", "dlib"), "landmark_gaps": ("previous", "nearest"), "face_detector": ("s3fd", "dlib"),
    "enhancer": ("gpen", "none"), "compose": ("official", "box"), "noise": ("seeded", "fresh"),
    "compat": ("default", "reference"),
}


@dataclass
class PipelineOptions:
    device: str = "cpu"
    fps: float = 25.0
    resample_fps: bool = False
    sample_rate: int = 16000
    batch_size: int = 4
    face_det_batch_size: int = 4
    landmarks: str = "fan"
    landmark_gaps: str = "previous"
    expression: str = "neutral"
    up_face: str = "original"
    one_shot: bool = False
    without_rl1: bool = False
    static: bool = False
    crop: tuple[int, int, int, int] = (0, -1, 0, -1)
    pads: tuple[int, int, int, int] = (0, 20, 0, 0)
    nosmooth: bool = False
    re_preprocess: bool = False
    enhancer: str = "gpen"
    face_detector: str = "s3fd"
    face_select: str | None = None
    compose: str = "official"
    noise: str = "seeded"
    compat: str = "default"
    precision: str = "fp32"
    compose_on_device: str = "auto"
    cache_dir: str | None = None
    checkpoint_dir: str = "checkpoints"
    seeded_stand_ins: tuple[str, ...] = STAND_INS
    max_seconds: float | None = None
    seed: int = 0
    weights_id: str = "official"
    preset_keys: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any, weights: Any = None, *, resolve_device: bool = True,
                    announce: bool = True) -> PipelineOptions:
        """The options of one run: config values, then the ``compat`` preset (logged), then checks.

        ``resolve_device=False`` keeps ``device`` as written (``auto`` stays ``auto``): the
        pre-flight asks which files the options load, and must not import torch to know.
        ``announce=False`` keeps the preset's warnings for the build that uses the options
        (the pre-flight's look at them would otherwise log every override twice).
        """
        from talkingface.runtime import resolve_device as resolve

        names = set(cls.__dataclass_fields__) - {"preset_keys"}
        values = {k: config[k] for k in names if k in config and config[k] is not None}
        if "face_select" in config:  # null is a value here: the official rule
            values["face_select"] = config["face_select"]
        device = config.get("device", "auto")
        values["device"] = resolve(device) if resolve_device else str(device or "auto")
        values["crop"] = tuple(config.get("crop", (0, -1, 0, -1)))
        values["pads"] = tuple(config.get("pads", (0, 20, 0, 0)))
        values["seeded_stand_ins"] = tuple(config.get("seeded_stand_ins", STAND_INS))
        values["checkpoint_dir"] = str(config.get("checkpoint_dir") or "checkpoints")
        if config.get("cache_dir") is None:
            values["cache_dir"] = str(Path(config.get("saved_dir", "saved")) / "cache")
        values["weights_id"] = weights.describe().get("weights", "official") if weights is not None else "official"
        options = cls(**values)
        if options.compat == "reference":
            options.apply_reference_preset(getattr(config, "origin", {}), announce=announce)
        options.check()
        return options

    def apply_reference_preset(self, origin: dict[str, str] | None = None, announce: bool = True) -> None:
        """Set :data:`REFERENCE_PRESET`; a key set otherwise by the user is overridden with a warning."""
        changed = {}
        for key, value in REFERENCE_PRESET.items():
            if getattr(self, key) != value:
                where = (origin or {}).get(key, "default")
                changed[key] = (getattr(self, key), where)
            setattr(self, key, value)
        self.preset_keys = dict(REFERENCE_PRESET)
        if not announce:
            return
        for key, (old, where) in changed.items():
            log.warning("compat=reference sets %s=%r (was %r from %s)", key, REFERENCE_PRESET[key], old, where)
        log.info("compat=reference: %s", ", ".join(f"{k}={v!r}" for k, v in REFERENCE_PRESET.items()))

    def check(self) -> None:
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}={getattr(self, key)!r} is not one of {', '.join(map(str, allowed))}",
                                  hint=f"e.g. --{key}={allowed[0]}")
        unknown = [s for s in self.seeded_stand_ins if s not in STAND_INS]
        if unknown:
            raise ConfigError(f"seeded_stand_ins: unknown part(s) {', '.join(unknown)}",
                              hint=f"choose among {', '.join(STAND_INS)} (or [] for none)")
        if self.up_face != "original":
            raise ConfigError(f"up_face={self.up_face!r} is not supported",
                              hint="the GANimation upper-face edit is not implemented; use up_face=original")
        if self.face_select is not None:
            from talkingface.face.select import parse_rule

            parse_rule(self.face_select)


def uses_expression_file(expression: str) -> bool:
    """``neutral`` / ``smile`` come from ``expression.mat``; an image path needs no file of the manifest."""
    return str(expression) in ("neutral", "smile")


def checkpoint_names(options: PipelineOptions) -> list[str]:
    """Manifest names of every file the pipeline loads with ``options`` (official weights), no more, no fewer.

    dlib's predictor serves the clip crop (always) and the dlib landmark/box
    choices; S3FD serves FAN and the L-Net boxes; ParseNet the mouth mask (always);
    GPEN's RetinaFace the reference enhancement and the official compose;
    facexlib's RetinaFace GFPGAN's alignment. facexlib's ``parsing_parsenet.pth``
    is loaded by the official GFPGANer but never used there (``use_parse=False``),
    so it is not needed.
    """
    names = ["dnet", "lnet", "enet", "face3d", "bfm"]
    if uses_expression_file(options.expression):
        names.append("expression")
    names.append("dlib_landmarks")
    if options.landmarks == "fan":
        names += ["s3fd", "fan"]
    if options.face_detector == "s3fd":
        names.append("s3fd")
    names.append("parsenet")
    if options.enhancer == "gpen":
        names += ["gpen", "retinaface", "gfpgan", "gfpgan_detection"]
    if options.compose == "official":
        names.append("retinaface")
    return list(dict.fromkeys(names))


class CheckpointFiles:
    """The one configured checkpoint folder; records every file the builder asks for.

    Official weights: the path, or the manifest's error with the download
    command. Seeded weights: the path when the file is there (data files such as
    ``BFM`` and ``expression.mat`` are then read), else None (seeded stand-ins).
    """

    def __init__(self, root: str | Path, seeded: bool) -> None:
        self.root = Path(root)
        self.seeded = seeded
        self.used: list[str] = []

    def path(self, name: str) -> Path | None:
        from talkingface.weights.manifest import checkpoint_path, find_checkpoint

        if name not in self.used:
            self.used.append(name)
        if self.seeded:
            return find_checkpoint(name, self.root)
        return checkpoint_path(name, self.root)
