"""D-Net and the E-Net head on the ONNX backends at fp32 parity; E-Net's noise drawn before the call, bit-identical."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from talkingface.accel import AccelOptions, accelerate
from talkingface.accel import onnx_backend


@pytest.fixture(scope="module")
def nets():
    from talkingface.models.video_retalking.networks import build_networks

    return build_networks("seeded", seed=0)


def _enet_inputs(batch: int, size: int = 96):
    g = torch.Generator().manual_seed(2)
    return torch.randn(batch, 1, 80, 16, generator=g), torch.rand(batch, 6, size, size, generator=g)


def test_enet_noise_drawn_before_the_call_equals_the_draws_inside_it(nets):
    """ENet.draw_noise makes the very draws the style convs make in the call: same outputs bit for bit, and the
    generator left in the same state (the L-Net draws nothing), for a given generator and for torch's global one."""
    enet = nets.enet
    assert all(float(conv.weight) != 0 for conv in enet.style_convs)  # the noise really reaches the output
    mel, img = _enet_inputs(1)
    with torch.inference_mode():
        inside, after_inside = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        ref, _ = enet(mel, img, img[:, 3:], generator=inside)
        noise = enet.draw_noise(1, after_inside)
        got, _ = enet(mel, img, img[:, 3:], *noise)
        assert [tuple(n.shape) for n in noise] == [(1, 1, 200, 200)] * 2 + [(1, 1, 400, 400)] * 2
        assert torch.equal(got, ref) and got.shape == (1, 3, 384, 384)
        assert torch.equal(inside.get_state(), after_inside.get_state())

        head = enet.head  # torch's global generator (the official default): the same calls in the same order
        ref_img, low_res = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 24, 24)
        torch.manual_seed(9)
        ref = head(ref_img, low_res)
        state = torch.get_rng_state()
        torch.manual_seed(9)
        noise = enet.draw_noise(2, low_res_size=(24, 24))
        assert torch.equal(torch.get_rng_state(), state)
        got = head(ref_img, low_res, *noise)
        assert torch.equal(got, ref) and got.shape == (2, 3, 96, 96)
        other = head(ref_img, low_res, *enet.draw_noise(2, torch.Generator().manual_seed(6), low_res_size=(24, 24)))
        assert (other - ref).abs().max().item() > 1e-2  # other draws, other output: the comparison can fail


def test_enet_keeps_its_checkpoint_keys(nets):
    """The head is a view, not a child module: strict loading of ENet.pth sees the same keys."""
    keys = set(nets.enet.state_dict())
    assert not any(k.startswith("head.") for k in keys)
    assert set(nets.enet.head.state_dict()) <= keys
    assert all(k.startswith("low_res.") for k in keys - set(nets.enet.head.state_dict()))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_enet_head_on_onnx_backends_within_fp32_parity(nets, backend, tmp_path):
    pytest.importorskip(backend)
    enet = copy.deepcopy(nets.enet)
    g = torch.Generator().manual_seed(4)
    ref_img, low_res = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 24, 24, generator=g)
    noise = enet.draw_noise(2, torch.Generator().manual_seed(1), low_res_size=(24, 24))
    with torch.inference_mode():
        expected = enet.head(ref_img, low_res, *noise)
        accelerate(enet.head, AccelOptions(device="cpu", cpu_backend=backend, accel_cache_dir=str(tmp_path)),
                   "ENetHead")
        got = enet.head(ref_img, low_res, *noise)
        eager_again = enet.head(ref_img, low_res, generator=torch.Generator().manual_seed(1))  # kwargs: torch
    assert torch.equal(eager_again, expected)
    assert (got - expected).abs().max().item() <= onnx_backend.PARITY
    assert not torch.equal(got, expected)  # really computed by the backend, not handed back from torch
    assert expected.abs().max().item() > 0.5
    assert len(list((tmp_path / "onnx").glob("ENetHead-*verified.json"))) == 1


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_dnet_on_onnx_backends_within_fp32_parity_and_cached(nets, backend, tmp_path):
    """grid_sample exports at opset 17 (GridSample-16); the dict result comes back with its keys."""
    pytest.importorskip(backend)
    g = torch.Generator().manual_seed(0)
    args = (torch.rand(1, 3, 256, 256, generator=g) * 2 - 1, torch.randn(1, 73, 26, generator=g))
    opts = AccelOptions(device="cpu", cpu_backend=backend, accel_cache_dir=str(tmp_path))
    with torch.inference_mode():
        expected = nets.dnet(*args)
        fast = accelerate(copy.deepcopy(nets.dnet), opts)
        got = fast(*args)
        assert not any(m.training for m in fast.modules())  # the export left the module in eval mode
        reloaded = accelerate(copy.deepcopy(nets.dnet), opts)(*args)  # a later run: the verified file as it is
    assert list(got) == list(expected) == ["flow_field", "warp_image", "fake_image"]
    for key in expected:
        assert (got[key] - expected[key]).abs().max().item() <= onnx_backend.PARITY, key
        assert torch.equal(reloaded[key], got[key])
    assert not torch.equal(got["fake_image"], expected["fake_image"])
    (verified,) = (tmp_path / "onnx").glob("DNet-*verified.json")
    assert json.loads(verified.read_text())["structure"] == {"dict": ["flow_field", "warp_image", "fake_image"]}


def test_lnet_export_fails_cleanly_and_stays_on_torch(nets, tmp_path, caplog):
    """The L-Net's FFT has no ONNX export (why only the E-Net's head runs on a backend): asked for a backend
    anyway, it warns, runs torch, and leaves no file behind."""
    pytest.importorskip("onnxruntime")
    lnet = copy.deepcopy(nets.enet.low_res)
    mel, img = _enet_inputs(1)
    with torch.inference_mode():
        expected = lnet(mel, img)
        accelerate(lnet, AccelOptions(device="cpu", cpu_backend="onnxruntime", accel_cache_dir=str(tmp_path)))
        got = lnet(mel, img)
        assert torch.equal(lnet(mel, img), expected)  # and torch from then on, without another try
    assert torch.equal(got, expected) and got.shape == (1, 3, 96, 96)
    assert "ONNX export failed" in caplog.text and caplog.text.count("ONNX export failed") == 1
    assert not list((tmp_path / "onnx").glob("*.onnx*"))
    assert not any(m.training for m in lnet.modules())


def test_pipeline_default_runs_dnet_and_the_enet_head_on_the_fastest_installed_backend(nets, tmp_path):
    from talkingface.config import load_config
    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.parts import build_parts
    from talkingface.models.video_retalking.options import PipelineOptions
    from talkingface.weights.policy import choose_weights

    expected = next((b for b in ("openvino", "onnxruntime") if onnx_backend.available(b)), None)
    openvino = "openvino" if onnx_backend.available("openvino") else None  # ONNX Runtime is slower than torch
    assert AccelOptions(device="cpu").cpu_backend_for("DNet") == openvino
    assert AccelOptions(device="cpu").cpu_backend_for("ENetHead") == expected
    assert AccelOptions(device="cpu").cpu_backend_for("ENet") is None  # the L-Net's FFT: torch
    config = load_config("video_retalking", "video-retalking", (), {"weights": "seeded", "device": "cpu",
                                                                    "accel_cache_dir": str(tmp_path)})
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    parts = build_parts(config, weights, PipelineOptions.from_config(config, weights))
    mel, img = _enet_inputs(1)
    g = torch.Generator().manual_seed(0)
    src, drive = torch.rand(1, 3, 256, 256, generator=g) * 2 - 1, torch.randn(1, 73, 26, generator=g)
    with torch.inference_mode():
        pred = parts.enet(mel, img, torch.Generator().manual_seed(0))
        fake = parts.dnet(src, drive)
        eager_pred, _ = nets.enet(mel, img, img[:, 3:], generator=torch.Generator().manual_seed(0))
        eager_fake = nets.dnet(src, drive)["fake_image"]
    # the official call (noise drawn inside, from the same generator), within fp32 parity
    assert pred.shape == (1, 3, 384, 384) and (pred - eager_pred).abs().max().item() <= onnx_backend.PARITY
    assert (fake - eager_fake).abs().max().item() <= onnx_backend.PARITY
    names = {p.name.split("-")[0] for p in (tmp_path / "onnx").glob("*verified.json")}
    assert names == {n for n, b in (("ENetHead", expected), ("DNet", openvino)) if b}
