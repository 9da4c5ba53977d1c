"""``identity``: the input video, unchanged, muxed with the driving audio.

The no-lip-sync baseline of every lip-sync table (its LSE-C is what "no sync"
scores on a dataset), and the cheapest model for exercising the run machinery.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from talkingface.config import Config
from talkingface.data.base import Pair
from talkingface.registry import register


@register("model", "identity")
class IdentityModel:
    @staticmethod
    def required_checkpoints(config: Config) -> list[str]:
        return []

    def __init__(self, config: Config, weights: Any) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: Config, weights: Any) -> IdentityModel:
        return cls(config, weights)

    def generate(self, pair: Pair, audio: Path, out_path: Path) -> dict[str, Any]:
        """The runner's contract: one pair's output and what it was made from."""
        self(pair.video, audio, out_path)
        return {"generated_video": out_path, "real_video": pair.video, "audio": audio}

    def __call__(self, video: str | Path, audio: str | Path, outfile: str | Path) -> Path:
        """The input video (cut to ``max_seconds``) muxed with ``audio``, written to ``outfile``."""
        from talkingface.media import fit_length, load_audio, read_video, samples_for_frames
        from talkingface.media.video import VideoWriter

        fps = float(self.config["fps"])
        frames = read_video(video, fps, lazy=True).frames  # streamed: long clips never sit in memory
        count = len(frames)
        if self.config.get("max_seconds"):
            count = min(count, int(round(self.config["max_seconds"] * fps)))
        rate = int(self.config["sample_rate"])
        sound = fit_length(load_audio(audio, rate), samples_for_frames(count, fps, rate), "pad")
        with VideoWriter(outfile, fps, sound, rate) as writer:
            for start in range(0, count, 25):
                writer.write(frames[start:min(count, start + 25)])
        return Path(outfile)
