"""Ray fan-out gives the same results as in-process, and killed runs resume without redoing work."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from talkingface.cli import main
from talkingface.distributed import shutdown
from talkingface.media import read_video

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "dataset" / "video-retalking"


def _folder_dataset(tmp_path, copies=2, corrupt=False):
    root = tmp_path / "clips"
    root.mkdir()
    for k in range(copies):
        for video in sorted(SAMPLE.glob("*.mp4")):
            shutil.copy(video, root / f"WRA_{video.stem}_{k}.mp4")
    if corrupt:
        (root / "WRA_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    return root


def _args(saved, root, *extra):
    return ["-m", "identity", "-d", "hdtf", f"--dataset_root={root}", f"--saved_dir={saved}", "--max_seconds=0.6",
            "--metrics=psnr", *extra]


def _videos(run_dir):
    return {p.name: read_video(p).frames for p in sorted((run_dir / "videos").glob("*.mp4"))}


def test_ray_two_workers_match_in_process(tmp_path):
    root = _folder_dataset(tmp_path, copies=1)
    assert main(_args(tmp_path / "a", root, "--num_workers=0")) == 0
    try:
        assert main(_args(tmp_path / "b", root, "--num_workers=2")) == 0
    finally:
        shutdown()
    (run_a,) = (tmp_path / "a").iterdir()
    (run_b,) = (tmp_path / "b").iterdir()
    a, b = _videos(run_a), _videos(run_b)
    assert a.keys() == b.keys() and len(a) == 3
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert json.loads((run_a / "pairs.json").read_text()) == json.loads((run_b / "pairs.json").read_text())


def test_failing_item_is_recorded_and_batch_goes_on(tmp_path):
    root = _folder_dataset(tmp_path, copies=1, corrupt=True)
    assert main(_args(tmp_path, root, "--max_retries=2")) == 0
    (run_dir,) = tmp_path.glob("identity-*")
    results = json.loads((run_dir / "results.json").read_text())
    # the broken clip fails both as a face video and as another pair's audio; the rest go on
    assert results["counts"] == {"succeeded": 2, "failed": 2, "skipped": 0}
    failed = [r for r in results["per_clip"] if r["status"] == "failed"]
    assert all("WRA_broken" in r["id"] and "InputMediaError" in r["error"] and "WRA_broken.mp4" in r["error"]
               for r in failed)


def test_sigterm_mid_batch_then_resume(tmp_path):
    root = _folder_dataset(tmp_path, copies=3)  # 9 items
    saved = tmp_path / "saved"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "run_talkingface.py"), *_args(saved, root)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    items = None
    while time.time() < deadline:
        found = list(saved.glob("identity-*/items/*.json"))
        if len(found) >= 2:
            items = found
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert items is not None, "run produced no items before the deadline"
    (run_dir,) = saved.glob("identity-*")
    finished = {p.stem: p.stat().st_mtime_ns for p in (run_dir / "items").glob("*.json")}
    assert 2 <= len(finished) < 9
    for record in (run_dir / "items").glob("*.json"):
        json.loads(record.read_text())  # every record on disk is complete JSON
    assert main(_args(saved, root)) == 0
    assert list(saved.glob("identity-*")) == [run_dir]  # the unfinished run was resumed
    for stem, mtime in finished.items():
        assert (run_dir / "items" / f"{stem}.json").stat().st_mtime_ns == mtime, f"{stem} was redone"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["counts"]["succeeded"] == 9
    assert not list(run_dir.rglob("*.tmp*")), "temporary files left behind"
