import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talkingface.cli import main
from talkingface.media import load_audio, read_video

REPO = Path(__file__).resolve().parent.parent


def _args(tmp_path, *extra):
    return ["-m", "identity", "-d", "video-retalking", f"--saved_dir={tmp_path}", "--max_seconds=1",
            "--metrics=psnr", "--weights=seeded", *extra]


def _run_dir(tmp_path):
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return run_dir


def test_run_writes_the_run_folder(tmp_path, capsys):
    assert main(_args(tmp_path)) == 0
    run_dir = _run_dir(tmp_path)
    for name in ["results.json", "results.csv", "config.yaml", "run.log", "pairs.json", "run.json"]:
        assert (run_dir / name).is_file(), name
    pairs = json.loads((run_dir / "pairs.json").read_text())
    assert len(pairs) == 3 and all(p["video_clip"] != p["audio_clip"] for p in pairs)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["counts"]["succeeded"] == 3
    assert "SEEDED" in results["WARNING"] and "seeded" in results["weights"]["weights"]
    assert "SEEDED WEIGHTS" in (run_dir / "run.log").read_text()
    video = run_dir / "videos" / f"{pairs[0]['id']}.mp4"
    clip = read_video(video)
    assert clip.num_frames == 25  # max_seconds=1 at 25 fps
    # the generated video carries the *other* clip's audio, fitted to the video length
    audio = load_audio(video)
    assert abs(len(audio) - 16000) <= 640
    # unpaired: the reference is not ground truth, so PSNR is reported as not applicable, never as a number
    table = capsys.readouterr().out
    assert "not applicable (unpaired" in table
    assert results["aggregate"]["PSNR (dB)"]["mean"] is None and results["aggregate"]["PSNR (dB)"]["count"] == 0


def test_rerun_resumes_and_skips_finished_items(tmp_path, caplog):
    assert main(_args(tmp_path)) == 0
    run_dir = _run_dir(tmp_path)
    pairs = json.loads((run_dir / "pairs.json").read_text())
    keep, drop = pairs[0]["id"], pairs[1]["id"]
    # simulate a run killed before item `drop` finished: its record is gone, and a stray temp file remains
    (run_dir / "items" / f"{drop}.json").unlink()
    (run_dir / "videos" / f".{drop}.abc.tmp.mp4").write_bytes(b"partial")
    info = json.loads((run_dir / "run.json").read_text())
    info["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(info))
    before = (run_dir / "videos" / f"{keep}.mp4").stat().st_mtime_ns
    caplog.clear()
    assert main(_args(tmp_path)) == 0
    assert _run_dir(tmp_path) == run_dir  # same folder reused
    assert "2 item(s) already finished, 1 to do" in caplog.text
    assert (run_dir / "videos" / f"{keep}.mp4").stat().st_mtime_ns == before
    assert json.loads((run_dir / "items" / f"{drop}.json").read_text())["status"] == "ok"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


def test_completed_run_with_same_command_starts_a_new_folder(tmp_path):
    assert main(_args(tmp_path)) == 0
    assert main(_args(tmp_path)) == 0
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_evaluate_stage_rescores_the_finished_run_reusing_clip_scores(tmp_path, caplog):
    assert main(_args(tmp_path)) == 0
    run_dir = _run_dir(tmp_path)
    psnr = {p.name: p.stat().st_mtime_ns for p in (run_dir / "scores").glob("*.psnr.json")}
    assert len(psnr) == 3 and not list((run_dir / "scores").glob("*.ssim.json"))
    caplog.clear()
    # another metric (and other evaluation settings) re-scores the same, finished run folder
    assert main(_args(tmp_path, "--stage=evaluate", "--metrics=psnr,ssim", "--lse_crop=frame")) == 0
    assert _run_dir(tmp_path) == run_dir
    assert "3 clip score(s) reused" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "scores").glob("*.psnr.json")} == psnr
    assert len(list((run_dir / "scores").glob("*.ssim.json"))) == 3
    results = json.loads((run_dir / "results.json").read_text())
    assert results["counts"]["succeeded"] == 3 and "SSIM" in results["aggregate"]
    # a regenerated video (new mtime) is scored again, the others are not
    pairs = json.loads((run_dir / "pairs.json").read_text())
    video = run_dir / "videos" / f"{pairs[0]['id']}.mp4"
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert main(_args(tmp_path, "--stage=evaluate", "--metrics=psnr")) == 0
    redone = {name for name, mtime in psnr.items() if (run_dir / "scores" / name).stat().st_mtime_ns != mtime}
    assert redone == {f"{pairs[0]['id']}.psnr.json"}


def test_missing_checkpoints_stop_before_any_work(tmp_path, capsys):
    code = main(["-m", "video_retalking", "-d", "video-retalking", f"--saved_dir={tmp_path}",
                 f"--checkpoint_dir={tmp_path / 'ckpt'}", "--weights=official"])
    err = capsys.readouterr().err
    assert code == 2
    assert "DNet.pt" in err and "python -m talkingface checkpoints download" in err
    assert list(tmp_path.iterdir()) == []  # no run folder: the next run cannot "resume" an empty one


@pytest.mark.parametrize("argv, needle", [
    (["--batch_size=abc"], "`batch_size` must be int"),
    (["--dataset_root=/nonexistent/LRS2", "-d", "lrs2"], "does not exist"),
    (["-d", "lrs5"], "unknown dataset 'lrs5'"),
    (["--config_files=/nonexistent.yaml"], "config file not found"),
    (["--subset=0", "-m", "identity"], "`subset` must be positive"),
])
def test_bad_input_exit_2_without_traceback(tmp_path, argv, needle):
    proc = subprocess.run([sys.executable, str(REPO / "run_talkingface.py"), f"--saved_dir={tmp_path}", *argv],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_keys():
    proc = subprocess.run([sys.executable, str(REPO / "run_talkingface.py"), "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and "--lse_crop" in proc.stdout and "default: 'unpaired'" in proc.stdout


def test_paired_identity_run_reports_the_psnr_of_its_outputs(tmp_path, capsys):
    """The table's PSNR is the mean of per-clip PSNRs computed on the decoded frames (checked with scikit-image)."""
    from skimage.metrics import peak_signal_noise_ratio

    assert main(_args(tmp_path, "--pairing=paired", "--metrics=psnr")) == 0
    run_dir = _run_dir(tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    pairs = json.loads((run_dir / "pairs.json").read_text())
    expected = []
    for pair in pairs:
        generated = read_video(run_dir / "videos" / f"{pair['id']}.mp4").frames
        reference = read_video(REPO / pair["video"]).frames[: len(generated)]
        assert len(generated) == 25
        expected.append(np.mean([peak_signal_noise_ratio(r, g, data_range=255)
                                 for r, g in zip(reference, generated)]))
    psnr = results["aggregate"]["PSNR (dB)"]
    assert psnr["count"] == 3
    # the identity model only re-encodes: high but finite PSNR, equal to the independent computation
    assert 35 < psnr["mean"] < 60
    assert psnr["mean"] == pytest.approx(float(np.mean(expected)), abs=1e-6)
    assert f"{psnr['mean']:.4f}" in capsys.readouterr().out
