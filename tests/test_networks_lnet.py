"""L-Net: keys/shapes and outputs equal the official module's (seeded-v1 parity fixture)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from networks_parity import (TOLERANCE, Capture, lnet_face, load_fixture, max_diff, module_keys, reference_keys,
                             seeded_lnet)
from talkingface.weights.seeded import key_rng


@pytest.fixture(scope="module")
def case():
    arrays, meta = load_fixture("LNet")
    return seeded_lnet(), torch.from_numpy(arrays["audio"]), torch.from_numpy(lnet_face(meta)), arrays


def _logit_tolerance(ref: np.ndarray) -> float:
    # logits reach |150| (see fixture meta note): 1e-4 relative to their scale, float32 arithmetic
    return TOLERANCE * max(1.0, float(np.abs(ref).max()))


def test_keys_and_shapes_equal_reference():
    net = seeded_lnet()
    assert module_keys(net) == reference_keys("LNet")
    # spectral norm in the old-style layout, as in LNet.pth
    keys = net.state_dict()
    assert {"encoder.first_inp.model.0.weight_orig", "encoder.first_inp.model.0.weight_u",
            "encoder.first_inp.model.0.weight_v"} <= set(keys)
    assert "encoder.first_inp.model.0.weight" not in keys


def test_sequence_form_matches_reference(case):
    net, audio, face, ref = case
    logits, audio_feat = Capture(net.decoder.final.model[0]), Capture(net.audio_encoder)
    try:
        with torch.inference_mode():
            out = net(audio, face)  # (B=1, T=2) sequence form
    finally:
        logits.remove(), audio_feat.remove()
    assert out.shape == (1, 3, 2, 96, 96)
    # the output is sigmoid(logits): its error is at most the sigmoid's slope (1/4) times the logits' error,
    # and the logits (|x| up to ~15) carry float32 rounding that depends on the CPU's kernels
    assert max_diff(out, ref["output"]) <= 0.25 * _logit_tolerance(ref["logits"])
    assert max_diff(audio_feat.value, ref["audio_feat"]) <= TOLERANCE
    assert max_diff(logits.value, ref["logits"]) <= _logit_tolerance(ref["logits"])


def test_single_frame_form_and_one_key_filled_differently(case):
    """(B,1,80,16)+(B,6,96,96) gives frame t of the sequence; one weight tensor filled with another seed is caught.

    Batch 1 vs the fixture's folded batch 2 runs different float32 conv kernels; with
    logits up to |150| that moves outputs by ~1e-4 (logits by ~1e-3), hence 1e-3 here.
    The same-shape comparison above is held to 1e-4 (it is bit-exact on CPU).
    """
    net, audio, face, ref = case
    logits = Capture(net.decoder.final.model[0])
    key = "decoder.res1.res4.conv1.ffc.convl2l.weight"
    weight = net.get_parameter(key)
    saved = weight.detach().clone()
    try:
        with torch.inference_mode():
            out = net(audio[:, 1], face[:, :, 1])
        assert out.shape == (1, 3, 96, 96)
        assert max_diff(out, ref["output"][:, :, 1]) <= 10 * TOLERANCE
        assert max_diff(logits.value, ref["logits"][1:2]) <= _logit_tolerance(ref["logits"])
        fan_in = int(np.prod(weight.shape[1:]))
        other = key_rng(1, key).standard_normal(tuple(weight.shape)) / np.sqrt(fan_in)  # seeded-v1, seed 1
        with torch.no_grad():
            weight.copy_(torch.from_numpy(other))
        with torch.inference_mode():
            changed = net(audio[:, 1], face[:, :, 1])
        assert max_diff(logits.value, ref["logits"][1:2]) > 100 * _logit_tolerance(ref["logits"])
        assert max_diff(changed, ref["output"][:, :, 1]) > 0.5
    finally:
        logits.remove()
        with torch.no_grad():
            weight.copy_(saved)  # the seeded L-Net is shared with the E-Net tests


def test_mixed_precision_runs():
    """Under autocast the Fourier units stay in float32 (no bfloat16 FFT; cuFFT half needs 2^k sizes)."""
    from talkingface.models.video_retalking.networks import LNet

    torch.manual_seed(0)
    net = LNet(num_res_blocks=1).eval()
    audio, face = torch.randn(1, 1, 80, 16), torch.rand(1, 6, 96, 96)
    with torch.inference_mode():
        full = net(audio, face)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(audio, face)
    assert half.dtype == torch.bfloat16 and half.shape == (1, 3, 96, 96)
    assert torch.isfinite(half).all() and (half.float() - full).abs().mean() < 0.1
