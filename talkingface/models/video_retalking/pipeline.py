"""VideoReTalking inference as a pipeline of named stages (issue 6: not landed yet)."""
from __future__ import annotations

from typing import Any


class VideoReTalkingPipeline:
    @classmethod
    def from_config(cls, config: Any, weights: Any) -> "VideoReTalkingPipeline":
        raise NotImplementedError("the VideoReTalking inference pipeline is issue 6 and has not landed yet")
