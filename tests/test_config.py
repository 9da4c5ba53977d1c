import pytest
import yaml

from talkingface.commands.common import parse_overrides
from talkingface.config import describe_keys, load_config
from talkingface.config.schema import KEYS
from talkingface.errors import ConfigError


def test_layers_in_order(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("batch_size: 7\nvshift: 10\n")
    b.write_text("batch_size: 9\n")
    cfg = load_config("video_retalking", "lrs2", [a, b], {"vshift": 12})
    assert cfg.fps == 25.0 and cfg.origin["fps"] == "overall.yaml"
    assert cfg.pads == [0, 20, 0, 0] and cfg.origin["pads"] == "model/video_retalking.yaml"
    assert cfg.lse_crop == "frame" and cfg.origin["lse_crop"] == "dataset/lrs2.yaml"
    assert cfg.batch_size == 9 and cfg.origin["batch_size"] == str(b)
    assert cfg.vshift == 12 and cfg.origin["vshift"] == "command line"


def test_dataset_default_crop_modes():
    assert load_config(dataset="lrs2").lse_crop == "frame"
    assert load_config(dataset="hdtf").lse_crop == "face"


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"batch_sise": 3})
    assert "batch_sise" in err.value.message and "batch_size" in err.value.hint


def test_wrong_type_names_key_and_layer(tmp_path):
    with pytest.raises(ConfigError, match="`batch_size` must be int, got 'abc'"):
        load_config(overrides=parse_overrides(["--batch_size=abc"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("pairing: sometimes\n")
    with pytest.raises(ConfigError) as err:
        load_config(config_files=[bad])
    assert str(bad) in err.value.message and "unpaired" in err.value.message


def test_yaml_syntax_error_has_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("seed: 1\nmetrics: [lse, fid\n")
    with pytest.raises(ConfigError, match=r"does not parse as YAML \(line"):
        load_config(config_files=[bad])


def test_cli_values_are_data_never_code():
    out = parse_overrides(["--dataset_root=__import__('os').system('touch /tmp/pwned')", "--seed", "3",
                           "--metrics=lse,fid", "--resume", "-m", "identity"])
    assert out["dataset_root"] == "__import__('os').system('touch /tmp/pwned')"
    assert out["seed"] == 3 and out["metrics"] == "lse,fid" and out["resume"] is True
    cfg = load_config(out.pop("model"), None, (), out)
    assert cfg.metrics == ["lse", "fid"] and cfg.model == "identity"
    with pytest.raises(ConfigError, match="`seed` must be int"):
        load_config(overrides=parse_overrides(["--seed=!!python/object/apply:os.system ['true']"]))


def test_help_lists_every_key_with_default():
    text = describe_keys(load_config())
    for name in KEYS:
        assert f"--{name}" in text
    assert "(default: 25.0)" in text


def test_overall_yaml_covers_schema_only():
    from talkingface.config.loader import CONFIG_DIR

    overall = yaml.safe_load((CONFIG_DIR / "overall.yaml").read_text())
    assert set(overall) <= set(KEYS)


def test_num_threads_caps_torch_and_opencv_threads():
    import cv2
    import torch

    from talkingface.runtime import configure_threads

    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        configure_threads(load_config(overrides={"num_threads": 3}))  # conftest runs torch with 1
        assert torch.get_num_threads() == 3 and cv2.getNumThreads() == 3
        configure_threads(load_config())  # 0: leave the current setting alone
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
    with pytest.raises(ConfigError, match="num_threads"):
        load_config(overrides={"num_threads": -1})


def test_run_fingerprint_follows_the_schema_scopes():
    """Only keys that change what a run generates fork its folder; a new evaluation key must not."""
    from talkingface.config.schema import KEYS, keys_in_scope
    from talkingface.run.runner import fingerprint

    base = load_config("video_retalking", "video-retalking")
    reference = fingerprint(base)
    assert keys_in_scope("generate") | keys_in_scope("evaluate", "runtime") == set(KEYS)
    assert {"metrics", "lse_crop", "num_workers", "device", "num_threads"} <= keys_in_scope("evaluate", "runtime")
    for name in ["metrics", "lse_crop", "vshift", "num_workers", "device", "num_threads", "batch_size"]:
        changed = dict(base)
        changed[name] = ["psnr"] if name == "metrics" else ("frame" if name == "lse_crop" else
                                                            ("cuda" if name == "device" else 3))
        assert fingerprint(changed) == reference, name
    for name, value in [("pairing", "paired"), ("seed", 7), ("expression", "smile"), ("max_seconds", 0.3)]:
        changed = dict(base)
        changed[name] = value
        assert fingerprint(changed) != reference, name


def test_config_files_is_parsed_once_the_same_on_every_command(tmp_path):
    """`--config_files=a,b` (spaces allowed), layered in order after a command's own files, before the options."""
    from talkingface.commands.common import command_config

    first, a, b = tmp_path / "run.yaml", tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("seed: 1\nbatch_size: 3\nlog_level: WARNING\n")
    a.write_text("seed: 2\nbatch_size: 5\n")
    b.write_text("seed: 3\n")
    overrides = parse_overrides([f"--config_files={a}, {b}", "--log_level", "ERROR"])
    cfg = command_config(overrides, with_dataset=False, first_files=[str(first)])
    assert (cfg.seed, cfg.batch_size, cfg.log_level) == (3, 5, "ERROR")
    assert cfg.config_files == [str(first), str(a), str(b)]
    assert command_config(parse_overrides([f"--config_files={b}"])).config_files == [str(b)]


def test_safe_file_name_keeps_each_callers_rule():
    from talkingface.atomic import safe_file_name

    assert safe_file_name("main/5535415699068794046/00001") == "main_5535415699068794046_00001"
    assert safe_file_name("/a b/", strip=True) == "a_b" and safe_file_name("/a b/") == "_a_b_"
    assert safe_file_name("x" * 200, 150) == "x" * 150 and safe_file_name("///", strip=True) == "clip"


def test_checkpoints_env_var_is_only_the_default_of_checkpoint_dir(tmp_path, monkeypatch):
    """One folder for the pre-flight and every loader: the variable fills ``checkpoint_dir``, never a loader."""
    from pathlib import Path

    from talkingface.weights.manifest import checkpoint_root

    monkeypatch.setenv("TALKINGFACE_CHECKPOINTS", str(tmp_path / "shared"))
    config = load_config("video_retalking", None)
    assert config["checkpoint_dir"] == str(tmp_path / "shared")
    assert config.origin["checkpoint_dir"] == "$TALKINGFACE_CHECKPOINTS"
    assert load_config("video_retalking", None, (), {"checkpoint_dir": "mine"})["checkpoint_dir"] == "mine"
    root = Path(__file__).resolve().parent.parent / "checkpoints"
    assert checkpoint_root(None) == root  # <repo>/checkpoints: a loader called without a folder reads no variable
    monkeypatch.delenv("TALKINGFACE_CHECKPOINTS")
    assert load_config("video_retalking", None)["checkpoint_dir"] == "checkpoints"
