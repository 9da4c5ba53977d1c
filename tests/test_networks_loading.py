"""Loading through the official file layouts (DNet.pt / LNet.pth / ENet.pth) with the official key rules, strictly.

Files are written with ``torch.save`` in the official nesting; most tensors are
stride-0 expanded constants (full shapes, a few bytes on disk), a few carry
marker values that must arrive in the right parameter.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from networks_parity import reference_keys
from talkingface.errors import CheckpointError, ConfigError
from talkingface.models.video_retalking.networks import build_networks, load_dnet, load_enet, load_lnet


def _constant_state(name: str, value: float = 0.0, prefix: str = "") -> dict[str, torch.Tensor]:
    state = {}
    for key, shape in reference_keys(name).items():
        dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
        state[prefix + key] = torch.full((), value, dtype=dtype).expand(shape)
    return state


def _lnet_file(path: Path, **changes: torch.Tensor | None) -> Path:
    state = _constant_state("LNet", prefix="module.")
    state["module.decoder.final.model.0.bias"] = torch.tensor([0.1, 0.2, 0.3])
    state["module.audio_encoder.0.conv_block.1.num_batches_tracked"] = torch.tensor(7)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            state.pop(key)
        else:
            state[key] = value
    torch.save({"state_dict": state, "global_step": 1200, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def _enet_file(path: Path) -> Path:
    head = {k: v for k, v in _constant_state("ENet", 0.5).items() if not k.startswith("low_res.")}
    head["to_rgbs.1.bias"] = torch.tensor([[[[1.0]], [[2.0]], [[3.0]]]])
    state = {"module." + k: v for k, v in head.items()}
    # training-time copies of the inner L-Net: ignored by the official rule, even with a wrong shape
    state["module.low_res.decoder.final.model.0.bias"] = torch.full((5,), 9.0)
    state["module.low_res.encoder.first_inp.model.0.weight_orig"] = torch.zeros(1)
    torch.save({"state_dict": state}, path)
    return path


def test_lnet_and_enet_official_layouts_round_trip(tmp_path):
    lnet_path, enet_path = _lnet_file(tmp_path / "LNet.pth"), _enet_file(tmp_path / "ENet.pth")
    lnet = load_lnet(lnet_path)
    assert not lnet.training
    assert torch.equal(lnet.decoder.final.model[0].bias, torch.tensor([0.1, 0.2, 0.3]))
    assert int(lnet.audio_encoder[0].conv_block[1].num_batches_tracked) == 7
    assert lnet.encoder.first_inp.model[0].weight_orig.abs().sum().item() == 0.0

    enet = load_enet(enet_path, lnet_path)
    assert not enet.training and not enet.low_res.training
    # low_res comes from LNet.pth, not from ENet.pth's low_res entries
    assert torch.equal(enet.low_res.decoder.final.model[0].bias, torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(enet.to_rgbs[1].bias.flatten(), torch.tensor([1.0, 2.0, 3.0]))
    assert enet.final_linear.weight[0, 0].item() == 0.5
    assert not any(p.requires_grad for p in enet.low_res.parameters())


def test_dnet_official_layout_round_trip(tmp_path):
    state = _constant_state("DNet", 0.25)
    state["editing_net.decoder.final.model.0.bias"] = torch.tensor([1.0, -1.0, 0.5])
    path = tmp_path / "DNet.pt"
    torch.save({"net_G_ema": state, "net_G": {"junk": torch.zeros(2)}, "current_epoch": 3}, path)
    dnet = load_dnet(path)
    assert not dnet.training
    assert torch.equal(dnet.editing_net.decoder.final.model[0].bias, torch.tensor([1.0, -1.0, 0.5]))
    assert dnet.mapping_net.first[0].weight[0, 0, 0].item() == 0.25

    # the official D-Net rule takes keys as they are: a DataParallel prefix is a mismatch, named
    torch.save({"net_G_ema": {"module." + k: v for k, v in state.items()}}, path)
    with pytest.raises(CheckpointError, match=r"DNet\.pt.*missing key.*unexpected key.*module\.mapping_net"):
        load_dnet(path)


def test_wrong_key_is_named_with_the_file(tmp_path):
    path = _lnet_file(tmp_path / "LNet.pth", module__decoder__jump0__model__1__bias=None,
                      module__decoder__jump0__model__1__beta=torch.zeros(64, 1, 1))
    with pytest.raises(CheckpointError) as info:
        load_lnet(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing key(s): decoder.jump0.model.1.bias" in message
    assert "unexpected key(s): decoder.jump0.model.1.beta" in message


def test_wrong_shape_is_named_with_the_file(tmp_path):
    path = _lnet_file(tmp_path / "LNet.pth", module__audio_encoder__12__conv_block__0__bias=torch.zeros(256))
    with pytest.raises(CheckpointError) as info:
        load_lnet(path)
    assert str(path) in str(info.value)
    assert "audio_encoder.12.conv_block.0.bias: file (256,) vs module (512,)" in str(info.value)


def test_enet_file_with_a_wrong_head_key_names_enet_file(tmp_path):
    lnet_path = _lnet_file(tmp_path / "LNet.pth")
    enet_path = tmp_path / "ENet.pth"
    state = {"module." + k: v for k, v in _constant_state("ENet").items() if not k.startswith("low_res.")}
    state.pop("module.final_conv.bias")
    torch.save({"state_dict": state}, enet_path)
    with pytest.raises(CheckpointError, match=r"ENet\.pth.*1 missing key\(s\): final_conv\.bias"):
        load_enet(enet_path, lnet_path)


class _Pickled:
    """Not a tensor: a weights_only load must refuse it."""


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_lnet(tmp_path / "absent.pth")
    path = tmp_path / "LNet.pth"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match=r"LNet\.pth: no 'state_dict' entry \(found: model\)"):
        load_lnet(path)
    torch.save({"state_dict": {}, "config": _Pickled()}, path)
    with pytest.raises(CheckpointError, match=r"pickled .*_Pickled object(.|\n)*weights_only=False"):
        load_lnet(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_dnet(path)


def test_official_weights_missing_or_unknown_mode(tmp_path):
    with pytest.raises(CheckpointError, match="DNet.pt") as info:
        build_networks("official", root=tmp_path)
    assert "checkpoints download dnet" in str(info.value)
    with pytest.raises(CheckpointError, match="ENet.pth"):
        load_enet(tmp_path / "ENet.pth", tmp_path / "LNet.pth")
    with pytest.raises(ConfigError, match="unknown weights"):
        build_networks("random")


def test_build_networks_seeded_wiring(monkeypatch, caplog):
    """weights='seeded': each net filled once by seeded-v1 (fills stubbed: the parity tests check the values)."""
    from talkingface.models.video_retalking.networks import loading

    filled = []
    monkeypatch.setattr(loading, "fill_seeded_", lambda module, seed: filled.append((type(module).__name__, seed))
                        or module)
    monkeypatch.setattr(loading, "seed_enet_head_", lambda module, seed: filled.append(("ENet head", seed))
                        or module)
    with caplog.at_level("WARNING"):
        nets = build_networks("seeded", seed=3)
    assert filled == [("DNet", 3), ("LNet", 3), ("ENet head", 3)]
    assert nets.lnet is nets.enet.low_res
    assert not any(net.training for net in nets)
    assert "SEEDED weights" in caplog.text
