"""LRS2 in its official layout: ``main/<id>/<clip>.mp4`` and split lists ``<split>.txt``."""
from __future__ import annotations


from talkingface.data.base import Clip, Dataset, select_subset
from talkingface.errors import DatasetError
from talkingface.registry import register


@register("dataset", "lrs2")
class LRS2Dataset(Dataset):
    name = "lrs2"

    def _split_ids(self) -> list[str]:
        split = self.config.get("split") or "test"
        listing = self.root / f"{split}.txt"
        if not listing.is_file():
            raise DatasetError(f"LRS2 split list {listing} not found",
                               hint="LRS2 ships test.txt / val.txt / train.txt / pretrain.txt in its root; "
                                    "pass --split=<name> or --dataset_root")
        # test.txt lines look like "6330311066473698535/00011 NF": the id is the first token.
        return [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]

    def clips(self) -> list[Clip]:
        self._require_root()
        ids = select_subset(self._split_ids(), self.config.get("subset"), f"{self.root}/{self.config.get('split')}.txt")
        clips = []
        missing = []
        for clip_id in ids:
            video = self.root / "main" / f"{clip_id}.mp4"
            if not video.is_file():
                missing.append(str(video))
                continue
            clips.append(Clip(clip_id, video, video))
        if missing:
            raise DatasetError(f"{len(missing)} LRS2 clip(s) listed in the split are missing, e.g. {missing[0]}",
                               hint="the official layout is <root>/main/<id>/<clip>.mp4; check dataset_root")
        return clips
