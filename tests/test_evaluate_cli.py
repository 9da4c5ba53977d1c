import json
import shutil
from pathlib import Path

import pytest

from talkingface.cli import module_main

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"
# the sample clips are 256x256 face crops: the sample dataset layer scores whole frames
EVALUATE = ("evaluate", "--dataset=video-retalking")


def test_paired_fidelity_on_identical_videos(tmp_path, capsys):
    code = module_main([*EVALUATE, "--generated", str(SAMPLE), "--reference", str(SAMPLE), "--pairing=paired",
                        "--metrics=psnr,ssim", f"--run_dir={tmp_path}", "--plots=false"])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["aggregate"]["SSIM"]["mean"] == pytest.approx(1.0)
    assert results["aggregate"]["SSIM"]["count"] == 3
    assert all(row["psnr"] == float("inf") for row in results["per_clip"])
    assert "SSIM" in capsys.readouterr().out


def test_unpaired_fidelity_is_not_a_number(tmp_path):
    code = module_main([*EVALUATE, "--generated", str(SAMPLE), "--reference", str(SAMPLE),
                        "--metrics=psnr,ssim", f"--run_dir={tmp_path}", "--plots=false"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert code == 0
    assert results["aggregate"]["PSNR (dB)"]["mean"] is None
    assert "not applicable" in results["aggregate"]["PSNR (dB)"]["note"]


def test_reference_names_must_match(tmp_path, capsys):
    other = tmp_path / "refs"
    other.mkdir()
    shutil.copy(SAMPLE / "astronaut_a.mp4", other / "someone_else.mp4")
    code = module_main([*EVALUATE, "--generated", str(SAMPLE), "--reference", str(other), f"--run_dir={tmp_path}/o"])
    assert code == 2
    assert "no reference video named astronaut_a" in capsys.readouterr().err


def test_lse_report_with_seeded_syncnet(tmp_path):
    code = module_main([*EVALUATE, "--generated", str(SAMPLE / "astronaut_b.mp4"), "--reference", str(SAMPLE),
                        "--metrics=lse", "--weights=seeded", "--lse_detector=dlib", "--lse_min_track=25",
                        f"--run_dir={tmp_path}"])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    row = results["per_clip"][0]
    assert row["lse_d"] > 0 and row["lse_c"] >= 0 and -15 <= row["lse_offset"] <= 15
    assert "SEEDED" in results["WARNING"]
    page = (tmp_path / "report.html").read_text()
    assert "LSE-C vs LSE-D" in page and page.count("data:image/png;base64,") >= 2


def test_same_out_folder_resumes_per_clip_scores(tmp_path, caplog):
    base = [*EVALUATE, "--generated", str(SAMPLE), "--reference", str(SAMPLE), "--pairing=paired",
            f"--run_dir={tmp_path}",
            "--plots=false"]
    argv = [*base, "--metrics=psnr,ssim", "--fidelity_crop=frame"]
    assert module_main(argv) == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "scores").iterdir()}
    assert sorted(stamps) == sorted(f"astronaut_{c}.{m}.json" for c in "abc" for m in ("psnr", "ssim"))
    first = json.loads((tmp_path / "results.json").read_text())
    caplog.clear()
    assert module_main(argv) == 0
    assert "6 clip score(s) reused" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "scores").iterdir()} == stamps
    assert json.loads((tmp_path / "results.json").read_text())["aggregate"] == first["aggregate"]
    # another crop is another score: computed again, next to nothing else
    assert module_main([*base, "--metrics=ssim", "--fidelity_crop=face", "--lse_detector=dlib"]) == 0
    assert {p.name for p in (tmp_path / "scores").iterdir()
            if p.stat().st_mtime_ns != stamps[p.name]} == {f"astronaut_{c}.ssim.json" for c in "abc"}


def test_help_names_the_ray_options(capsys):
    with pytest.raises(SystemExit):
        module_main([*EVALUATE, "--help"])
    out = capsys.readouterr().out
    assert "--num_workers" in out and "--ray_address" in out


def test_in_process_scoring_never_imports_ray(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from talkingface.cli import module_main\n"
        f"assert module_main(['evaluate', '--generated', {str(SAMPLE / 'astronaut_a.mp4')!r}, '--reference', "
        f"{str(SAMPLE)!r}, '--pairing=paired', '--metrics=psnr', '--fidelity_crop=frame', '--run_dir={tmp_path}', "
        "'--plots=false', '--num_workers=0']) == 0\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "results.json").read_text())["per_clip"][0]["psnr"] == float("inf")
