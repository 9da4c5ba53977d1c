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
        from talkingface.media import fit_length, load_audio, read_video, samples_for_frames, write_video

        fps = float(self.config["fps"])
        clip = read_video(pair.video, fps)
        frames = clip.frames
        if self.config.get("max_seconds"):
            frames = frames[: int(round(self.config["max_seconds"] * fps))]
        sound = load_audio(audio, int(self.config["sample_rate"]))
        sound = fit_length(sound, samples_for_frames(len(frames), fps, int(self.config["sample_rate"])), "pad")
        write_video(out_path, frames, fps, sound, int(self.config["sample_rate"]))
        return {"generated_video": out_path, "real_video": pair.video, "audio": audio}
