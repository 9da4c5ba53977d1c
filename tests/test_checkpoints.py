import pytest
import torch
from torch import nn

from talkingface.weights import manifest as checkpoints
from talkingface.cli import module_main
from talkingface.errors import CheckpointError
from talkingface.weights.seeded import load_strict, seeded_state_dict, torch_load
from talkingface.weights.policy import SEEDED_BANNER, choose_weights


def test_manifest_has_every_official_file():
    files = {s.filename for s in checkpoints.MANIFEST.values()}
    for name in ["DNet.pt", "LNet.pth", "ENet.pth", "face3d_pretrain_epoch_20.pth", "GFPGANv1.3.pth",
                 "GPEN-BFR-512.pth", "ParseNet-latest.pth", "RetinaFace-R50.pth", "expression.mat", "BFM",
                 "shape_predictor_68_face_landmarks.dat", "syncnet_v2.model", "pt_inception-2015-12-05-6726825d.pth"]:
        assert name in files
    assert all(s.url.startswith("http") for s in checkpoints.MANIFEST.values())


def test_missing_file_message_has_fix_command(tmp_path):
    with pytest.raises(CheckpointError) as err:
        checkpoints.require(["dnet", "lnet"], tmp_path)
    assert "DNet.pt" in err.value.message and "LNet.pth" in err.value.message
    assert "python -m talkingface checkpoints download dnet lnet" in err.value.hint


def test_dlib_predictor_falls_back_to_package(tmp_path):
    path = checkpoints.checkpoint_path("dlib_landmarks", tmp_path)
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.stat().st_size > 90_000_000


def test_verify_reports_missing_and_size(tmp_path, capsys):
    (tmp_path / "DNet.pt").write_bytes(b"x" * 10)
    results = {r.name: r for r in checkpoints.verify(["dnet", "lnet"], tmp_path)}
    assert results["dnet"].status == "unchecked" and results["lnet"].status == "missing"
    code = module_main(["checkpoints", "verify", "dnet", "lnet", "--root", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 2 and "checkpoints download lnet" in captured.err


def test_verify_sha256_mismatch(tmp_path, monkeypatch):
    spec = checkpoints.MANIFEST["dnet"]
    (tmp_path / spec.filename).write_bytes(b"abc")
    monkeypatch.setitem(checkpoints.MANIFEST, "dnet",
                        checkpoints.CheckpointSpec(**{**spec.__dict__, "sha256": "0" * 64, "size": 3}))
    assert checkpoints.verify(["dnet"], tmp_path)[0].status == "sha256-mismatch"


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "LNet.pth"
    torch.save({"state_dict": {"a": torch.zeros(3)}}, path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="LNet.pth"):
        torch_load(path)


def test_strict_load_names_keys_and_file():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    state = seeded_state_dict(net, 0)
    state["extra.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(CheckpointError) as err:
        load_strict(net, state, "some/file.pth")
    text = err.value.message
    assert "some/file.pth" in text and "extra.weight" in text and "0.weight: file (4, 3, 5, 5)" in text


def test_weights_modes(tmp_path, caplog):
    with pytest.raises(CheckpointError):
        choose_weights("official", ["dnet"], tmp_path)
    choice = choose_weights("seeded", ["dnet"], tmp_path, seed=3)
    assert choice.seeded and "seed=3" in choice.describe()["weights"]
    assert SEEDED_BANNER in caplog.text
