"""One setting, one flag name on every command; `--help` at the top; `checkpoints` sized to the config;
messages that say what happened and what to do (issue 16, points 5, 6 and 8)."""
import logging
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from talkingface.cli import module_main
from talkingface.config import load_config
from talkingface.errors import CheckpointError, ConfigError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "dataset" / "video-retalking"


def test_top_level_help_lists_every_subcommand():
    proc = subprocess.run([sys.executable, "-m", "talkingface", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ")}
    assert set(lines) == {"run", "infer", "evaluate", "checkpoints", "sample"}
    assert all(len(line.split()) > 3 for line in lines.values())  # each with its one line


def test_checkpoints_take_checkpoint_dir_and_warn_on_root(tmp_path, capsys):
    assert module_main(["checkpoints", "verify", "dnet", f"--checkpoint_dir={tmp_path}"]) == 2
    captured = capsys.readouterr()
    assert "missing          dnet" in captured.out and "deprecated" not in captured.err
    assert module_main(["checkpoints", "verify", "dnet", "--root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "`checkpoints --root` is deprecated" in captured.err and "use `--checkpoint_dir`" in captured.err
    assert "missing          dnet" in captured.out


def test_sample_takes_dataset_root_and_warns_on_root(tmp_path, capsys):
    for flag, root in (("--dataset_root", tmp_path / "a"), ("--root", tmp_path / "b")):
        root.mkdir()
        for clip in SAMPLE.glob("*.mp4"):
            shutil.copy(clip, root / clip.name)
        assert module_main(["sample", f"{flag}={root}"]) == 0  # clips present: nothing to rebuild
        assert (root / "clips.json").is_file()
    assert "`sample --root` is deprecated" in capsys.readouterr().err


def test_evaluate_old_spellings_warn_and_mean_the_config_keys(tmp_path, capsys):
    argv = ["evaluate", f"--generated={SAMPLE / 'astronaut_a.mp4'}", f"--reference={SAMPLE}", "--paired",
            "--metrics=psnr", "--fidelity_crop=frame", f"--out={tmp_path / 'o'}", "--plots=false"]
    assert module_main(argv) == 0
    err = capsys.readouterr().err
    assert "`evaluate --out` is deprecated" in err and "`evaluate --paired` is deprecated" in err
    assert (tmp_path / "o" / "results.json").is_file()


@pytest.mark.parametrize("spelling", [["--debug"], ["--debug=true"], ["--debug", "true"]])
def test_debug_means_tracebacks_on_every_command(tmp_path, spelling):
    with pytest.raises(CheckpointError):
        module_main(["checkpoints", "verify", "nonexistent", *spelling])
    with pytest.raises(ConfigError):
        module_main(["infer", "--face=a.mp4", "--audio=b.wav", f"--outfile={tmp_path}/o.mp4", "--device=gpu",
                     *spelling])
    with pytest.raises(ConfigError):
        module_main(["evaluate", f"--generated={SAMPLE}", "--device=gpu", *spelling])
    with pytest.raises(ConfigError):
        module_main(["--device=gpu", *spelling])
    assert module_main(["checkpoints", "verify", "nonexistent", "--debug=false"]) == 2


def test_verify_defaults_to_the_files_the_config_needs(tmp_path, capsys):
    assert module_main(["checkpoints", "verify", f"--checkpoint_dir={tmp_path}"]) == 2
    listed = {line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("missing")}
    # the official defaults: FAN on S3FD boxes, RetinaFace for GPEN and the compose, facexlib's detector for GFPGAN
    assert listed == {"dnet", "lnet", "enet", "face3d", "bfm", "expression", "parsenet", "s3fd", "fan", "gpen",
                      "retinaface", "gfpgan", "gfpgan_detection", "syncnet", "inception"}  # no GANimation
    assert module_main(["checkpoints", "verify", f"--checkpoint_dir={tmp_path}", "--enhancer=none",
                        "--face_detector=dlib", "--metrics=lse"]) == 2
    listed = {line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("missing")}
    assert listed == {"dnet", "lnet", "enet", "face3d", "bfm", "expression", "s3fd", "fan", "parsenet",
                      "retinaface", "syncnet"}
    assert module_main(["checkpoints", "verify", f"--checkpoint_dir={tmp_path}", "--enhancer=none",
                        "--face_detector=dlib", "--metrics=lse", "--landmarks=dlib", "--compose=box"]) == 2
    listed = {line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("missing")}
    assert listed == {"dnet", "lnet", "enet", "face3d", "bfm", "expression", "parsenet", "syncnet"}
    assert module_main(["checkpoints", "verify", "-m", "identity", "--metrics=psnr"]) == 0
    assert module_main(["checkpoints", "verify", "--all", f"--checkpoint_dir={tmp_path}"]) == 2
    out = capsys.readouterr().out
    assert "retinaface" in out and "gfpgan_parsing" in out
    assert "ganimation" not in out  # no option loads it: --all does not propose the unsupported GANimation file
    assert module_main(["checkpoints", "list"]) == 0
    listing = capsys.readouterr().out
    assert "30_net_gen.pth" in listing and "[not loaded by any option]" in listing


def test_python_yaml_tag_gets_a_data_not_code_hint(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError) as info:
        load_config(config_files=[path])
    assert "line 1" in info.value.message and "!!python" in info.value.hint and "never code" in info.value.hint


def test_metric_note_does_not_reuse_the_word_skipped():
    from talkingface.run.scoring import table_aggregate

    out = table_aggregate({"lse_c": {"mean": 1.0, "std": 0.0, "n": 2, "skipped": 2}}, "unpaired")
    assert out["LSE-C (higher is better)"]["note"] == "2 clip(s) not scored by this metric (reason per clip)"


def test_setup_says_when_already_installed(tmp_path):
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    digest = subprocess.run("cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16", shell=True,
                            cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / f".installed-{digest}").touch()
    proc = subprocess.run(["bash", "scripts/setup.sh", "--dev"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0 and "already installed" in proc.stdout and "requirements-dev.txt" in proc.stdout


def test_num_workers_beyond_the_work_says_the_real_count(caplog):
    from talkingface.run.fanout import _actor_count

    class Cluster:  # what ray.cluster_resources() reports
        @staticmethod
        def cluster_resources():
            return {"CPU": 2.0}

    with caplog.at_level(logging.INFO, logger="talkingface.run.fanout"):
        assert _actor_count(Cluster(), {"num_workers": 64}, 5, 0.0) == 2
        assert _actor_count(Cluster(), {"num_workers": 64}, 1, 0.0) == 1
    assert "--num_workers=64: running 2 worker(s) (room for 2 on the cluster: CPU 2.0" in caplog.text
    assert "--num_workers=64: running 1 worker(s) (1 item(s) to do" in caplog.text


def test_fid_on_few_frames_gives_no_raw_linalg_warning():
    from talkingface.evaluation.fid import frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))  # 3 samples in 8 dims: singular covariances
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert np.isfinite(value)
    assert not [w for w in caught if "LinAlgWarning" in w.category.__name__], [str(w.message) for w in caught]


def test_ctrl_c_during_infer_uses_infer_wording(tmp_path):
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "talkingface", "infer", f"--face={SAMPLE / 'astronaut_a.mp4'}",
                             f"--audio={SAMPLE / 'astronaut_b.wav'}", f"--outfile={out}", "--weights=seeded",
                             f"--saved_dir={tmp_path / 'saved'}", "--face_detector=dlib", "--enhancer=none"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell may start us with SIGINT ignored, which a child would inherit
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(4)  # past the pre-flight, inside the pipeline
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: no output was written" in err and "finished items" not in err
    assert not out.exists()


def test_misspelt_command_argument_suggests_it(tmp_path, capsys):
    argv = ["infer", "--face=a.mp4", "--audio=b.wav", f"--outfile={tmp_path}/o.mp4", "--outfil=x"]
    assert module_main(argv) == 2
    assert "unknown option `--outfil`" in capsys.readouterr().err
    assert module_main(["evaluate", "--generated=x", "--referense=y"]) == 2
    assert "did you mean `reference`?" in capsys.readouterr().err
