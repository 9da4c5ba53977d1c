"""HDTF: a folder of clips named WRA_*.mp4, RD_*.mp4, WDA_*.mp4 (optionally a split list)."""
from __future__ import annotations

from talkingface.data.base import Clip, Dataset, select_subset
from talkingface.errors import DatasetError
from talkingface.registry import register

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")


@register("dataset", "hdtf")
class HDTFDataset(Dataset):
    name = "hdtf"

    def clips(self) -> list[Clip]:
        self._require_root()
        files = sorted(p for p in self.root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        by_id = {p.stem: p for p in files}
        split = self.config.get("split")
        if split:
            listing = self.root / f"{split}.txt"
            if not listing.is_file():
                raise DatasetError(f"HDTF split list {listing} not found",
                                   hint="omit --split to use every clip in the folder, or create the list")
            ids = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            ids = list(by_id)
        ids = select_subset(ids, self.config.get("subset"), str(self.root))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise DatasetError(f"{len(missing)} HDTF clip(s) not found in {self.root}, e.g. {missing[0]}",
                               hint="clip ids are file names without extension (e.g. WRA_AdamSchiff_000)")
        return [Clip(i, by_id[i], by_id[i]) for i in ids]
