"""Stage cache + scratch: atomic stage folders, disk-backed arrays moved (not copied), memory-mapped loads."""
from __future__ import annotations

import numpy as np

from talkingface.models.video_retalking import cache as cache_mod
from talkingface.models.video_retalking.cache import ClipScratch, StageCache


def test_scratch_arrays_are_moved_into_the_cache_and_loaded_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "MMAP_BYTES", 1000)
    scratch = ClipScratch(tmp_path)
    big = scratch.empty("refs", (4, 32, 32, 3))
    big[:] = np.arange(4, dtype=np.uint8)[:, None, None, None]
    small = np.array([[1, 2, 3, 4]], np.int64)
    cache = StageCache(tmp_path, {"video": "abc"})
    assert cache.load("references", {"pads": [0, 20, 0, 0]}) is None and cache.misses == ["references"]
    cache.save("references", {"pads": [0, 20, 0, 0]}, {"refs": big, "boxes": small}, scratch)
    assert list(scratch.folder.iterdir()) == []  # moved, not copied
    assert big[3, 0, 0, 0] == 3  # the open array still reads after the move
    again = StageCache(tmp_path, {"video": "abc"})
    hit = again.load("references", {"pads": [0, 20, 0, 0]})
    assert again.hits == ["references"]
    assert isinstance(hit["refs"], np.memmap) and not isinstance(hit["boxes"], np.memmap)
    assert np.array_equal(hit["refs"], big) and np.array_equal(hit["boxes"], small)
    # another option value is another entry; nothing half-written is left beside the entries
    assert again.load("references", {"pads": [0, 10, 0, 0]}) is None
    assert sorted(p.name.split("-")[0] for p in cache.folder.iterdir()) == ["references"]
    scratch.close()
    assert not scratch.folder.exists()


def test_disabled_cache_and_unreadable_entry(tmp_path):
    off = StageCache(None, {"video": "x"})
    off.save("crop", {}, {"a": np.zeros(3)})
    assert off.load("crop", {}) is None
    cache = StageCache(tmp_path, {"video": "x"})
    cache.save("crop", {}, {"a": np.arange(3)})
    entry = next(cache.folder.iterdir())
    (entry / "a.npy").write_bytes(b"not an array")
    assert cache.load("crop", {}) is None and cache.misses == ["crop"]  # recomputed, not a crash
    cache.clear()
    assert not cache.folder.exists()


def test_scratch_of_a_killed_process_is_removed_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from talkingface.models.video_retalking.cache import _scratch_prefix

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{_scratch_prefix()}{done.stdout.strip()}-abc"  # a process that has exited
    (dead / "x").mkdir(parents=True)
    other_host = tmp_path / ".scratch-some-other-host-1-abc"  # might be alive elsewhere: never ours to delete
    other_host.mkdir()
    mine = ClipScratch(tmp_path)  # a live process's scratch
    assert not dead.exists() and other_host.exists() and mine.folder.exists()
    again = ClipScratch(tmp_path)
    assert mine.folder.exists()  # still alive: kept
    again.close()
    mine.close()
