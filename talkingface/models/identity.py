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

    def generate(self, pair: Pair, audio: Path, out_path: Path) -> dict[str, Any]:
        from talkingface.media import fit_length, load_audio, read_video, samples_for_frames
        from talkingface.media.video import VideoWriter

        fps = float(self.config["fps"])
        frames = read_video(pair.video, fps, lazy=True).frames  # streamed: long clips never sit in memory
        count = len(frames)
        if self.config.get("max_seconds"):
            count = min(count, int(round(self.config["max_seconds"] * fps)))
        rate = int(self.config["sample_rate"])
        sound = fit_length(load_audio(audio, rate), samples_for_frames(count, fps, rate), "pad")
        with VideoWriter(out_path, fps, sound, rate) as writer:
            for start in range(0, count, 25):
                writer.write(frames[start:min(count, start + 25)])
        return {"generated_video": out_path, "real_video": pair.video, "audio": audio}
