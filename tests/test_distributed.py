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
from talkingface.run.fanout import shutdown
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
    assert main(_args(tmp_path, root, "--max_retries=2")) == 3  # the batch goes on, and its exit code says so
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


def _cheap_frechet(mu1, sigma1, mu2, sigma2):
    """A function of every feature (a 2048-d sqrtm takes ~30 s here; its numerics are tested in test_eval_fid)."""
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2))


EVAL_ARGS = ["--metrics=lse,fid,psnr,ssim", "--pairing=paired", "--weights=seeded", "--lse_crop=frame",
             "--fid_crop=frame", "--fidelity_crop=frame", "--fid_frame_stride=5", "--plots=false"]


def _scores(run_dir):
    """Every stored per-clip score: JSON rows and FID feature arrays."""
    rows = {p.name: json.loads(p.read_text())["row"] for p in sorted((run_dir / "scores").glob("*.json"))}
    feats = {}
    for path in sorted((run_dir / "scores").glob("*.npz")):
        with np.load(path) as data:
            feats[path.name] = {k: data[k] for k in ("generated", "reference")}
    return rows, feats


def test_ray_evaluation_matches_in_process_and_resumes(tmp_path, monkeypatch):
    from talkingface.cli import module_main
    from talkingface.evaluation import fid as fid_module

    monkeypatch.setattr(fid_module, "frechet_distance", _cheap_frechet)
    root = _folder_dataset(tmp_path, copies=1)
    saved = tmp_path / "saved"
    assert main(_args(saved, root, "--stage=generate", *EVAL_ARGS)) == 0
    (run_a,) = saved.iterdir()
    run_b = tmp_path / "copy"
    shutil.copytree(run_a, run_b)  # same videos (records point at run_a's), its own scores
    assert main(_args(saved, root, f"--run_dir={run_a}", "--stage=evaluate", "--num_workers=0", *EVAL_ARGS)) == 0
    try:
        assert main(_args(saved, root, f"--run_dir={run_b}", "--stage=evaluate", "--num_workers=2", *EVAL_ARGS)) == 0
        out_ray = tmp_path / "cli_ray"
        cli = ["evaluate", "--generated", str(run_a / "videos"), "--reference", str(run_a / "videos"),
               "--pairing=paired",
               "--metrics=psnr,ssim", "--fidelity_crop=frame", "--plots=false"]
        assert module_main([*cli, f"--run_dir={out_ray}", "--num_workers", "2"]) == 0
    finally:
        shutdown()
    a = json.loads((run_a / "results.json").read_text())
    b = json.loads((run_b / "results.json").read_text())
    assert a["counts"] == b["counts"] == {"succeeded": 3, "failed": 0, "skipped": 0}
    assert a["aggregate"] == b["aggregate"]
    assert a["evaluation"]["weights"] == b["evaluation"]["weights"]
    fid = a["aggregate"]["FID"]
    assert fid["count"] == 9 and fid["mean"] > 0  # 3 of 15 frames per clip
    assert 0 < a["aggregate"]["SSIM"]["mean"] < 1 and a["aggregate"]["PSNR (dB)"]["count"] == 3
    for row_a, row_b in zip(a["per_clip"], b["per_clip"]):
        for key in ("lse_d", "lse_c", "lse_offset", "fid_frames", "psnr", "ssim"):
            assert row_a[key] == row_b[key] and row_a[key] is not None, (row_a["id"], key)
    rows_a, feats_a = _scores(run_a)
    rows_b, feats_b = _scores(run_b)
    assert rows_a == rows_b and len(rows_a) == 12  # 3 clips x 4 metrics
    assert feats_a.keys() == feats_b.keys() and len(feats_a) == 3
    for name in feats_a:
        for side in ("generated", "reference"):
            assert feats_a[name][side].shape == (3, 2048)
            assert np.array_equal(feats_a[name][side], feats_b[name][side]), (name, side)

    # the evaluate command fans out the same way
    out_local = tmp_path / "cli_local"
    assert module_main([*cli, f"--run_dir={out_local}"]) == 0
    cli_local = json.loads((out_local / "results.json").read_text())
    cli_ray = json.loads((out_ray / "results.json").read_text())
    assert cli_local["aggregate"] == cli_ray["aggregate"] and cli_ray["aggregate"]["SSIM"]["mean"] == 1.0
    assert len(list((out_ray / "scores").glob("*.json"))) == 6

    # re-run: nothing is rescored; another FID stride rescores FID only
    stamps = {p.name: p.stat().st_mtime_ns for p in (run_a / "scores").iterdir()}
    assert main(_args(saved, root, f"--run_dir={run_a}", "--stage=evaluate", *EVAL_ARGS)) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (run_a / "scores").iterdir()} == stamps
    assert json.loads((run_a / "results.json").read_text())["aggregate"] == a["aggregate"]
    assert main(_args(saved, root, f"--run_dir={run_a}", "--stage=evaluate", *EVAL_ARGS, "--fid_frame_stride=8")) == 0
    changed = {p.name for p in (run_a / "scores").iterdir() if p.stat().st_mtime_ns != stamps[p.name]}
    assert changed == {n for n in stamps if ".fid." in n}
    assert json.loads((run_a / "results.json").read_text())["aggregate"]["FID"]["count"] == 6  # frames 0 and 8 of 15


class _FakeRay:
    """Just enough of ray.wait/ray.get for fan_out: a call's result is computed at once."""

    def wait(self, refs, num_returns=1):
        return refs[:1], refs[1:]

    def get(self, ref):
        if isinstance(ref.value, BaseException):
            raise ref.value
        return ref.value


class _Ref:
    def __init__(self, value):
        self.value = value


def test_fan_out_routes_around_a_dead_worker():
    from ray.exceptions import RayActorError

    from talkingface.run.fanout import fan_out

    calls = []

    def call(actor, task):
        calls.append((actor, task))
        if actor == "dead":
            return _Ref(RayActorError())
        if task == 3:
            return _Ref(ValueError("bad clip"))
        return _Ref(task * 10)

    lost = []
    results = list(fan_out(_FakeRay(), ["ok", "dead"], list(range(6)), call, "test",
                           lambda task, why: lost.append((task, why))))
    assert [t for t, _ in lost] == [0, 3]
    assert "Ray worker died" in lost[0][1] and lost[1][1] == "ValueError: bad clip"
    assert sorted(results) == [10, 20, 40, 50]
    assert [a for a, _ in calls].count("dead") == 1  # a dead worker gets no more work
    lost.clear()
    assert list(fan_out(_FakeRay(), ["dead"], [7, 8], call, "test", lambda t, why: lost.append((t, why)))) == []
    assert [t for t, _ in lost] == [7, 8] and lost[1][1] == "no Ray worker left"


@pytest.mark.parametrize("resources, workers, tasks, gpus, expected", [
    ({"CPU": 16.0, "GPU": 1.0}, 4, 10, 1.0, 1),    # one GPU per worker: only one fits
    ({"CPU": 16.0, "GPU": 1.0}, 4, 10, 0.5, 2),    # two share the GPU
    ({"CPU": 2.0}, 4, 10, 0.0, 2),                 # CPU-only cluster smaller than asked
    ({"CPU": 8.0}, 4, 3, 0.0, 3),                  # never more actors than tasks
])
def test_actor_count_fits_the_cluster(resources, workers, tasks, gpus, expected):
    from talkingface.run.fanout import _actor_count

    class Ray:
        def cluster_resources(self):
            return resources

    assert _actor_count(Ray(), {"num_workers": workers}, tasks, gpus) == expected


def test_no_worker_fits_is_a_config_error():
    from talkingface.run.fanout import _actor_count
    from talkingface.errors import ConfigError

    class Ray:
        def cluster_resources(self):
            return {"CPU": 4.0}

    with pytest.raises(ConfigError, match="no Ray worker fits"):
        _actor_count(Ray(), {"num_workers": 2}, 5, 1.0)


def test_running_ray_is_reused_only_for_the_same_request():
    """A later run asking for another Ray (other address or size) must not get the earlier one."""
    from talkingface.config import Config
    from talkingface.run.fanout import init_ray

    try:
        ray = init_ray(Config({"ray_address": None, "num_workers": 1}))
        assert ray.cluster_resources()["CPU"] == 1
        session = ray.get_runtime_context().get_job_id()
        assert init_ray(Config({"ray_address": None, "num_workers": 1})).get_runtime_context().get_job_id() == session
        ray = init_ray(Config({"ray_address": None, "num_workers": 2}))
        assert ray.cluster_resources()["CPU"] == 2
    finally:
        shutdown()


def test_ray_workers_import_the_package_from_this_checkout():
    """Workers get the folder that holds ``talkingface/`` on their path (not the package folder itself)."""
    from talkingface.run.fanout import _repo_path

    first = Path(_repo_path().split(os.pathsep)[0])
    assert (first / "talkingface" / "__init__.py").is_file() and (first / "run_talkingface.py").is_file()
