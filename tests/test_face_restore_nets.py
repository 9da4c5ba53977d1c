"""GPEN / GFPGAN generators: reference keys at 512, seeded-v1 parity on small builds of the same code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from networks_parity import load_fixture, module_keys, reference_keys
from talkingface.errors import CheckpointError
from talkingface.face import gpen
from talkingface.weights.seeded import seeded_state_dict


def test_gpen_keys_and_shapes_equal_reference_512():
    assert module_keys(gpen.FullGenerator(512, 512, 8, 2, narrow=1)) == reference_keys("GPEN")


def test_gpen_matches_reference_and_is_deterministic():
    ref, meta = load_fixture("GPEN")
    net = gpen.load_gpen(weights="seeded", seed=meta["seed"], size=meta["size"], narrow=meta["narrow"])
    with torch.inference_mode():
        out = net(torch.from_numpy(ref["input"]))
        again = net(torch.from_numpy(ref["input"]))
    assert torch.equal(out, again)
    assert np.abs(out.numpy() - ref["output"]).max() <= 1e-4
    assert ref["output"].std() > 0.1
    restored = gpen.restore_face(net, ref["face_rgb"])
    assert restored.shape == (64, 64, 3) and restored.dtype == np.uint8
    assert np.abs(restored.astype(int) - ref["restored_rgb"]).max() <= 1


def test_upfirdn2d_against_direct_formula():
    x = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4) % 7
    kernel = gpen.make_kernel([1, 3, 3, 1])
    out = gpen.upfirdn2d(x, kernel, up=1, down=1, pad=(2, 1))
    padded = torch.nn.functional.pad(x, [2, 1, 2, 1])
    expected = torch.zeros_like(out)
    flipped = torch.flip(kernel, [0, 1])
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            expected[:, :, i, j] = (padded[:, :, i:i + 4, j:j + 4] * flipped).sum((-1, -2))
    assert torch.allclose(out, expected, atol=1e-5)
    up = gpen.Upsample()(x)
    assert up.shape == (2, 3, 10, 8)
    # a constant image stays constant in the interior after FIR upsampling (kernel sums to factor^2)
    const = gpen.Upsample()(torch.ones(1, 1, 6, 6))
    assert torch.allclose(const[..., 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


def test_gpen_loader_refuses_wrong_file(tmp_path):
    net = gpen.FullGenerator(32, 512, 8, 2, narrow=0.0625)
    state = seeded_state_dict(net, 1)
    path = tmp_path / "GPEN-BFR-512.pth"
    torch.save(state, path)
    loaded = gpen.load_gpen(path, size=32, narrow=0.0625)
    assert torch.equal(loaded.state_dict()["ecd0.0.0.weight"], state["ecd0.0.0.weight"])
    del state["generator.to_rgb1.bias"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="generator.to_rgb1.bias"):
        gpen.load_gpen(path, size=32, narrow=0.0625)


def test_gfpgan_keys_and_shapes_equal_reference_512():
    from talkingface.face import gfpgan

    assert module_keys(gfpgan.GFPGANv1Clean()) == reference_keys("GFPGAN")


def test_gfpgan_matches_reference_with_stored_noise():
    from talkingface.face import gfpgan

    ref, meta = load_fixture("GFPGAN")
    net = gfpgan.load_gfpgan(weights="seeded", seed=meta["seed"], size=meta["size"], narrow=meta["narrow"],
                             num_style_feat=meta["num_style_feat"])
    x = torch.from_numpy(ref["input"])
    with torch.inference_mode():
        out = net(x)
        again = net(x)
        noisy = net(x, randomize_noise=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert np.abs(out.numpy() - ref["output"]).max() <= 1e-4
    assert ref["output"].std() > 0.1
    assert (noisy - out).abs().max() > 1e-3  # noise strengths are non-zero: the stored maps matter


def test_gfpgan_loader_params_ema(tmp_path):
    from talkingface.face import gfpgan

    net = gfpgan.GFPGANv1Clean(32, 32, 2, narrow=0.0625)
    state = seeded_state_dict(net, 3)
    path = tmp_path / "GFPGANv1.3.pth"
    torch.save({"params_ema": state}, path)
    loaded = gfpgan.load_gfpgan(path, size=32, narrow=0.0625, num_style_feat=32)
    assert torch.equal(loaded.state_dict()["final_linear.bias"], state["final_linear.bias"])
    torch.save({"g": state}, path)
    with pytest.raises(CheckpointError, match="params_ema"):
        gfpgan.load_gfpgan(path, size=32, narrow=0.0625, num_style_feat=32)
