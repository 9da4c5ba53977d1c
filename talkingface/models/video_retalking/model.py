"""The ``video_retalking`` model: one object, a pipeline of named components, built once.

``infer`` and the runner use the same object and the same call::

    model = VideoReTalking.from_config(config, weights)        # or .from_pretrained("checkpoints/")
    model("face.mp4", "speech.wav", "out.mp4")                  # one output: video, audio, out path
    model.generate(pair, audio, out_path)                       # the runner's contract (a record)
    model.pipeline.components["enhance_face"]                   # a named component; .swap(name=callable)
"""
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
    """VideoReTalking inference (:class:`~.pipeline.VideoReTalkingPipeline`) behind the model contract.

    ``networks_on_demand``: the networks (~20 s on a CPU) load when the first
    stage that needs one runs, after the face crop (dlib only) has succeeded, so
    a clip without a face fails in about a second (``infer`` does this).
    """

    @staticmethod
    def required_checkpoints(config: Config) -> list[str]:
        """Exactly the files the pipeline will load with this config (one rule: ``options.checkpoint_names``)."""
        from talkingface.models.video_retalking.options import PipelineOptions, checkpoint_names

        return checkpoint_names(PipelineOptions.from_config(config, resolve_device=False, announce=False))

    def __init__(self, config: Config, weights: Any, *, networks_on_demand: bool = False) -> None:
        self.config = config
        self.weights = weights
        self.networks_on_demand = networks_on_demand
        self._pipeline = None

    @classmethod
    def from_config(cls, config: Config, weights: Any, *, networks_on_demand: bool = False) -> VideoReTalking:
        """The model for a loaded config and the weights the pre-flight chose (nothing is loaded yet)."""
        return cls(config, weights, networks_on_demand=networks_on_demand)

    @classmethod
    def from_pretrained(cls, checkpoint_dir: str | Path, **overrides: Any) -> VideoReTalking:
        """The model with the official files of ``checkpoint_dir`` and the model's default config
        (``overrides``: any config key, e.g. ``device="cuda"``, ``enhancer="none"``)."""
        from talkingface.config import load_config
        from talkingface.weights.policy import choose_weights

        config = load_config("video_retalking", None, (), {"checkpoint_dir": str(checkpoint_dir), **overrides},
                             with_dataset=False)
        weights = choose_weights(config["weights"], cls.required_checkpoints(config), config["checkpoint_dir"],
                                 int(config["seed"]))
        return cls.from_config(config, weights)

    @property
    def pipeline(self):
        """The pipeline, built on first use and kept (its networks load once)."""
        if self._pipeline is None:
            from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline

            self._pipeline = VideoReTalkingPipeline.from_config(self.config, self.weights,
                                                                networks_on_demand=self.networks_on_demand)
        return self._pipeline

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per stage of the last call."""
        return dict(self.pipeline.timings)

    def __call__(self, video: str | Path, audio: str | Path, outfile: str | Path) -> Path:
        """Lip-sync ``video`` (or an image) to ``audio``; the mp4 is written to ``outfile`` atomically."""
        return self.pipeline(face=video, audio=audio, outfile=outfile)

    def generate(self, pair: Pair, audio: Path, out_path: Path) -> dict[str, Any]:
        """Lip-sync ``pair.video`` to ``audio``; the contract of every model (the runner's record)."""
        self(pair.video, audio, out_path)
        return {"generated_video": out_path, "real_video": pair.video, "audio": audio,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}
