from pathlib import Path

import numpy as np
import pytest

from talkingface.config import load_config
from talkingface.data.base import Clip, derangement, make_pairs, select_subset
from talkingface.data.hdtf import HDTFDataset
from talkingface.data.lrs2 import LRS2Dataset
from talkingface.errors import DatasetError


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_derangement_has_no_fixed_point_and_is_seeded(n):
    perm = derangement(n, seed=5)
    assert sorted(perm.tolist()) == list(range(n))
    assert not np.any(perm == np.arange(n))
    assert perm.tolist() == derangement(n, seed=5).tolist()


def test_different_seeds_give_different_pairings():
    assert derangement(20, 0).tolist() != derangement(20, 1).tolist()


def test_unpaired_needs_two_clips():
    with pytest.raises(DatasetError, match="at least 2 clips"):
        derangement(1, 0)


def test_pairs_unpaired_and_paired():
    clips = [Clip(f"c{i}", Path(f"v{i}.mp4"), Path(f"a{i}.wav")) for i in range(4)]
    unpaired = make_pairs(clips, "unpaired", 0)
    assert all(p.video_clip != p.audio_clip and not p.paired for p in unpaired)
    assert sorted(p.audio_clip for p in unpaired) == [c.id for c in clips]
    assert unpaired[0].id == f"{unpaired[0].video_clip}__{unpaired[0].audio_clip}"
    paired = make_pairs(clips, "paired", 0)
    assert [(p.video, p.audio) for p in paired] == [(c.video, c.audio) for c in clips]


def _lrs2(tmp_path, n=5):
    root = tmp_path / "LRS2"
    ids = [f"600000000000000{i}/0000{i}" for i in range(n)]
    for clip in ids:
        (root / "main" / clip).parent.mkdir(parents=True, exist_ok=True)
        (root / "main" / f"{clip}.mp4").write_bytes(b"")
    (root / "test.txt").write_text("".join(f"{c} NF\n" for c in ids))
    return root, ids


def test_lrs2_layout_split_and_subset(tmp_path):
    root, ids = _lrs2(tmp_path)
    cfg = load_config(dataset="lrs2", overrides={"dataset_root": str(root), "subset": 3})
    clips = LRS2Dataset(cfg).clips()
    assert [c.id for c in clips] == ids[:3]
    assert clips[0].video == root / "main" / f"{ids[0]}.mp4"
    listing = tmp_path / "mine.txt"
    listing.write_text(f"{ids[4]}\n{ids[1]}\n")
    cfg = load_config(dataset="lrs2", overrides={"dataset_root": str(root), "subset": str(listing)})
    assert [c.id for c in LRS2Dataset(cfg).clips()] == [ids[4], ids[1]]
    pairs = LRS2Dataset(cfg).pairs()
    assert pairs[0].id == f"{ids[4].replace('/', '_')}__{ids[1].replace('/', '_')}"


def test_lrs2_errors(tmp_path):
    cfg = load_config(dataset="lrs2", overrides={"dataset_root": str(tmp_path / "nope")})
    with pytest.raises(DatasetError, match="does not exist"):
        LRS2Dataset(cfg).clips()
    root, ids = _lrs2(tmp_path)
    cfg = load_config(dataset="lrs2", overrides={"dataset_root": str(root), "split": "val"})
    with pytest.raises(DatasetError, match="val.txt not found"):
        LRS2Dataset(cfg).clips()
    with pytest.raises(DatasetError, match="positive"):
        select_subset(ids, 0, "x")


def test_hdtf_folder(tmp_path):
    for name in ["WRA_A_000.mp4", "RD_B_001.mp4", "WDA_C_002.mp4", "notes.txt"]:
        (tmp_path / name).write_bytes(b"")
    cfg = load_config(dataset="hdtf", overrides={"dataset_root": str(tmp_path)})
    assert [c.id for c in HDTFDataset(cfg).clips()] == ["RD_B_001", "WDA_C_002", "WRA_A_000"]
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = load_config(dataset="hdtf", overrides={"dataset_root": str(empty)})
    with pytest.raises(DatasetError, match="no clips"):
        HDTFDataset(cfg).pairs()
