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
        """Exactly the files the pipeline will load with this config (one rule: ``options.checkpoint_names``)."""
        from talkingface.models.video_retalking.options import PipelineOptions, checkpoint_names

        return checkpoint_names(PipelineOptions.from_config(config, resolve_device=False, announce=False))

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
