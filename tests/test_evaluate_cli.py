import csv
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
                        "--metrics=psnr,ssim", "--fidelity_crop=frame", f"--run_dir={tmp_path}", "--plots=false"])
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
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["lse_protocol"], r["lse_aggregation"]) for r in rows} == {("reference", "per_clip")}
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


def _evaluate_config(argv):
    from talkingface.commands.common import parse_overrides
    from talkingface.commands.evaluate import build_config

    return build_config(parse_overrides(argv))


def test_evaluate_defaults_are_the_reference_tools_not_a_dataset(tmp_path):
    """No --dataset: syncnet_python's face-track settings, whatever the default dataset's layer says."""
    config = _evaluate_config([])
    expected = {"lse_protocol": "reference", "lse_aggregation": "per_clip", "lse_crop": "face",
                "lse_detector": "s3fd", "lse_min_track": 100, "lse_min_face_size": 100.0, "lse_crop_scale": 0.4,
                "lse_facedet_scale": 0.25, "lse_num_failed_det": 25, "vshift": 15, "max_seconds": None}
    assert {k: config[k] for k in expected} == expected
    assert config.origin["lse_min_track"] == "evaluation.yaml"
    # a dataset's evaluation keys apply when its runs are scored (--dataset), and only then
    sample = _evaluate_config(["--dataset=video-retalking"])
    assert (sample["lse_crop"], sample["lse_detector"], sample["lse_min_track"]) == ("frame", "dlib", 15)
    # the run command still layers the dataset it runs
    from talkingface.config import load_config

    assert load_config(None, "lrs2")["lse_crop"] == "frame" and load_config(None, "hdtf")["lse_crop"] == "face"
    mine = tmp_path / "mine.yaml"
    mine.write_text("lse_protocol: direct\n")
    assert _evaluate_config([f"--config_files={mine}", "--lse_aggregation=per_track"])["lse_protocol"] == "direct"


def test_metrics_without_a_config_use_the_same_defaults():
    """Library use (a partial dict) gets config/evaluation.yaml's values, not per-metric literals."""
    from talkingface.config import load_config
    from talkingface.evaluation.base import EvalContext
    from talkingface.evaluation.defaults import evaluation_defaults

    context = EvalContext({"device": "cpu"})
    loaded = load_config(None, None, with_dataset=False)
    for key, value in evaluation_defaults().items():
        assert context.config[key] == value == loaded[key]


def test_evaluate_run_dir_scores_outputs_against_the_dataset_by_pairs_json(tmp_path, capsys):
    """`evaluate --run_dir`: outputs <video>__<audio>.mp4 vs the dataset's <video>.mp4, as the run's evaluate stage."""
    from talkingface.cli import main as run_main

    saved = tmp_path / "saved"
    assert run_main(["-m", "identity", "-d", "video-retalking", f"--saved_dir={saved}", "--max_seconds=1",
                     "--weights=seeded", "--stage=generate"]) == 0
    (run_dir,) = [p for p in saved.iterdir() if p.is_dir()]
    pairs = json.loads((run_dir / "pairs.json").read_text())
    assert all("__" in p["id"] and (run_dir / "videos" / f"{p['id']}.mp4").is_file() for p in pairs)
    # one output without its item record (made elsewhere, or the record was lost) is still scored
    (run_dir / "items" / f"{pairs[2]['id']}.json").unlink()
    capsys.readouterr()
    code = module_main(["evaluate", f"--run_dir={run_dir}", "--metrics=psnr,ssim", "--fidelity_crop=frame",
                        "--pairing=paired"])
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    rows = {r["id"]: r for r in results["per_clip"]}
    assert set(rows) == {p["id"] for p in pairs} and results["counts"]["succeeded"] == 3
    for pair in pairs:  # the reference of each output is its pair's face video (identity: the same frames)
        assert rows[pair["id"]]["reference"].endswith(Path(pair["video"]).name)
        assert rows[pair["id"]]["ssim"] > 0.9
    # the run's own settings apply: its dataset's evaluation layer (the sample set scores whole frames)
    assert results["evaluation"]["config"]["lse_crop"] == "frame"
    assert results["evaluation"]["config"]["lse_detector"] == "dlib"
    assert "SSIM" in capsys.readouterr().out
    # the same call again reuses every clip score
    stamps = {p.name: p.stat().st_mtime_ns for p in (run_dir / "scores").glob("*.json")}
    assert len(stamps) == 6
    assert module_main(["evaluate", f"--run_dir={run_dir}", "--metrics=psnr,ssim", "--fidelity_crop=frame",
                        "--pairing=paired"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "scores").glob("*.json")} == stamps


def test_evaluate_run_dir_errors_are_clear(tmp_path, capsys):
    assert module_main(["evaluate", f"--run_dir={tmp_path}"]) == 2
    assert "no pairs.json" in capsys.readouterr().err
    assert module_main(["evaluate", f"--run_dir={tmp_path}", f"--reference={SAMPLE}"]) == 2
    assert "takes the videos, references" in capsys.readouterr().err
    assert module_main(["evaluate"]) == 2
    assert "needs --generated" in capsys.readouterr().err
