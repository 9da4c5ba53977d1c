"""E-Net: keys/shapes and outputs equal the official module's (seeded-v1 parity fixture, explicit noise)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from networks_parity import (TOLERANCE, Capture, enet_inputs, load_fixture, max_diff, module_keys,
                             reference_keys, seeded_lnet)
from talkingface.models.video_retalking.networks import ENet, seed_enet_head_
from talkingface.face.stylegan import StyleConv
from talkingface.weights.seeded import fill_seeded_, key_rng


@pytest.fixture(scope="module")
def case():
    arrays, meta = load_fixture("ENet")
    face, noises = enet_inputs(meta)
    # low_res = the stand-alone seeded L-Net (official rule: L-Net weights come from LNet.pth)
    net = seed_enet_head_(ENet(lnet=seeded_lnet()), meta["seed"]).eval()
    return net, torch.from_numpy(arrays["audio"]), torch.from_numpy(face), noises, arrays


def test_keys_and_shapes_equal_reference(case):
    net = case[0]
    assert module_keys(net) == reference_keys("ENet")
    assert net.low_res is seeded_lnet() and not any(p.requires_grad for p in net.low_res.parameters())


def test_outputs_match_reference(case):
    net, audio, face, noises, ref = case
    style = Capture(net.final_linear)
    try:
        with torch.inference_mode():
            pred, low_res = net(audio, face, face[:, 3:], noise=noises)
    finally:
        style.remove()
    assert pred.shape == (1, 3, 384, 384) and low_res.shape == (1, 3, 96, 96)
    assert max_diff(style.value, ref["style_code"]) <= TOLERANCE
    # low_res is the L-Net output: sigmoid of logits up to ~15 in magnitude, whose float32 rounding depends
    # on the CPU's kernels (test_networks_lnet bounds it by the logits' tolerance); 1e-3 = fp32 parity per network
    assert max_diff(low_res, ref["low_res"]) <= 1e-3
    assert max_diff(pred, ref["pred"]) <= 1e-3
    # the noise path is live in the fixture (strengths are seeded, not zero)
    assert all(abs(conv.weight.item()) > 0.5 for conv in net.style_convs)


def test_one_key_filled_differently_is_detected(case):
    """Refill one E-Net weight with seed 1: the style code (cheap part of the forward) moves far beyond tolerance."""
    net, _, face, _, ref = case
    key = "conv_body_down.3.conv2.weight"
    weight = net.get_parameter(key)
    saved = weight.detach().clone()
    fan_in = int(np.prod(weight.shape[1:]))
    try:
        with torch.no_grad():
            weight.copy_(torch.from_numpy(key_rng(1, key).standard_normal(tuple(weight.shape)) / np.sqrt(fan_in)))
        with torch.inference_mode():
            code = net.style_code(face[:, 3:])
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert code.shape == (1, 1, 512)
    assert max_diff(code[:, 0], ref["style_code"]) > 100 * TOLERANCE


def test_noise_is_controllable():
    """Same generator seed -> same output; explicit noise == the generator's draw; other seed differs."""
    conv = fill_seeded_(StyleConv(3, 8, 3, num_style_feat=16, sample_mode="upsample"), 1).eval()
    x, style = torch.randn(2, 3, 12, 12), torch.randn(2, 1, 16)
    with torch.inference_mode():
        a = conv(x, style, generator=torch.Generator().manual_seed(7))
        b = conv(x, style, generator=torch.Generator().manual_seed(7))
        c = conv(x, style, generator=torch.Generator().manual_seed(8))
        explicit = torch.randn(2, 1, 24, 24, generator=torch.Generator().manual_seed(7))
        d = conv(x, style, noise=explicit)
    assert a.shape == (2, 8, 24, 24)
    assert torch.equal(a, b) and torch.equal(a, d) and not torch.allclose(a, c)


def test_wrong_noise_count_is_rejected(case):
    net, audio, face, noises, _ = case
    with pytest.raises(ValueError, match="4 noise"):
        net(audio, face, face[:, 3:], noise=noises[:2])
