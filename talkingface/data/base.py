"""Clips, pairs and the pairing rule shared by every dataset.

A dataset only lists clips; pairing (unpaired derangement or paired) is the same
for all of them and is written to the run folder so a run can be reproduced.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkingface.atomic import safe_file_name
from talkingface.errors import DatasetError


@dataclass(frozen=True)
class Clip:
    id: str
    video: Path
    audio: Path  # a wav, or the video itself when its audio track is the speech


@dataclass(frozen=True)
class Pair:
    """One generation job: the face video of one clip driven by the audio of another."""
    id: str
    video_clip: str
    audio_clip: str
    video: Path
    audio: Path
    paired: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["video"], data["audio"] = str(self.video), str(self.audio)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pair:
        return cls(data["id"], data["video_clip"], data["audio_clip"], Path(data["video"]),
                   Path(data["audio"]), bool(data["paired"]))


def safe_id(text: str) -> str:
    """A clip id usable as a file name (LRS2 ids contain '/')."""
    return safe_file_name(text, strip=True)


def derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation with no fixed point (each clip gets another clip's audio).

    Uniform over derangements by rejection (expected e ≈ 2.7 draws).
    """
    if n < 2:
        raise DatasetError("the unpaired setting needs at least 2 clips (each video takes another clip's audio)",
                           hint="add clips, raise `subset`, or use --pairing=paired")
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def make_pairs(clips: list[Clip], pairing: str, seed: int) -> list[Pair]:
    if not clips:
        raise DatasetError("the dataset has no clips", hint="check dataset_root, split and subset")
    if pairing == "paired":
        return [Pair(safe_id(c.id), c.id, c.id, c.video, c.audio, True) for c in clips]
    perm = derangement(len(clips), seed)
    return [
        Pair(f"{safe_id(v.id)}__{safe_id(clips[j].id)}", v.id, clips[j].id, v.video, clips[j].audio, False)
        for v, j in zip(clips, perm)
    ]


def select_subset(ids: list[str], subset: Any, where: str) -> list[str]:
    """``subset``: None (all), an int N (first N in split order), or a file listing ids."""
    if subset is None:
        return ids
    if isinstance(subset, bool):
        raise DatasetError(f"`subset` must be a number of clips or a list file, got {subset!r}")
    if isinstance(subset, int) or (isinstance(subset, str) and subset.isdigit()):
        count = int(subset)
        if count <= 0:
            raise DatasetError(f"`subset` must be positive, got {count}", hint="use e.g. --subset=100")
        return ids[:count]
    path = Path(str(subset))
    if not path.is_file():
        raise DatasetError(f"subset list file not found: {path}",
                           hint="give a number of clips (--subset=100) or a text file with one clip id per line")
    wanted = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    known = set(ids)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise DatasetError(f"{path}: {len(unknown)} id(s) not in {where}: {', '.join(unknown[:5])}",
                           hint="list clip ids exactly as they appear in the split file / folder")
    return wanted


class Dataset:
    """Base: subclasses list clips; pairing is shared."""

    name = "base"

    def __init__(self, config: Any) -> None:
        self.config = config
        root = config.get("dataset_root")
        if root is None:
            raise DatasetError(f"dataset `{self.name}` needs `dataset_root`",
                               hint=f"pass --dataset_root=/path/to/{self.name}")
        self.root = Path(root)

    def clips(self) -> list[Clip]:  # pragma: no cover - abstract
        raise NotImplementedError

    def pairs(self) -> list[Pair]:
        clips = self.clips()
        if not clips:
            raise DatasetError(f"dataset `{self.name}` at {self.root} has no clips after split/subset selection",
                               hint="check dataset_root, split and subset")
        return make_pairs(clips, self.config.get("pairing", "unpaired"), int(self.config.get("seed", 0)))

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise DatasetError(f"dataset root {self.root} does not exist",
                               hint=f"download {self.name} and pass --dataset_root=/path/to/it")
