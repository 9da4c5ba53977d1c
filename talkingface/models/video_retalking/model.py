"""The ``video_retalking`` model of the registry: config + weights -> a pipeline per run."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from talkingface.config import Config
from talkingface.data.base import Pair
from talkingface.registry import register

log = logging.getLogger(__name__)


@register("model", "video_retalking")
class VideoReTalking:
    """Adapter between the runner's contract and :class:`VideoReTalkingPipeline`."""

    @staticmethod
    def required_checkpoints(config: Config) -> list[str]:
        names = ["dnet", "lnet", "enet", "face3d", "bfm", "expression", "parsenet", "dlib_landmarks"]
        if config.get("face_detector", "s3fd") == "s3fd":
            names.append("s3fd")
        if config.get("enhancer", "gpen") == "gpen":
            names += ["gpen", "gfpgan"]
        if config.get("landmarks") == "fan":
            names.append("fan")
        return names

    def __init__(self, config: Config, weights: Any) -> None:
        self.config = config
        self.weights = weights
        self._pipeline = None

    @property
    def pipeline(self):
        if self._pipeline is None:
            from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline

            self._pipeline = VideoReTalkingPipeline.from_config(self.config, self.weights)
        return self._pipeline

    def generate(self, pair: Pair, audio: Path, out_path: Path) -> dict[str, Any]:
        """Lip-sync ``pair.video`` to ``audio``; the contract of every model."""
        self.pipeline(face=pair.video, audio=audio, outfile=out_path)
        return {"generated_video": out_path, "real_video": pair.video, "audio": audio,
                "timings": {k: round(v, 3) for k, v in self.pipeline.timings.items()}}
