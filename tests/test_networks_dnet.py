"""D-Net: keys/shapes and outputs equal the official module's (seeded-v1 parity fixture)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from networks_parity import TOLERANCE, Capture, check_sha, load_fixture, max_diff, module_keys, reference_keys
from talkingface.models.video_retalking.networks import DNet
from talkingface.weights.seeded import fill_seeded_, seeded_input


@pytest.fixture(scope="module")
def case():
    arrays, meta = load_fixture("DNet")
    image = seeded_input("dnet_image", (1, 3, 256, 256), meta["seed"], low=-1, high=1)
    check_sha(meta, "input_image", image)
    net = fill_seeded_(DNet(), meta["seed"]).eval()
    return net, torch.from_numpy(image), torch.from_numpy(arrays["driving_source"]), arrays


def test_keys_and_shapes_equal_reference():
    assert module_keys(DNet()) == reference_keys("DNet")


def test_outputs_match_reference(case):
    net, image, coeffs, ref = case
    capture = Capture(net.mapping_net)
    try:
        with torch.inference_mode():
            out = net(image, coeffs)
    finally:
        capture.remove()
    assert set(out) == {"flow_field", "warp_image", "fake_image"}
    assert max_diff(capture.value, ref["descriptor"]) <= TOLERANCE
    for key in ("flow_field", "warp_image", "fake_image"):
        assert max_diff(out[key], ref[key]) <= TOLERANCE, key
    # the fixture is informative: a real warp (flow of several pixels) and an unsaturated image
    assert np.abs(ref["flow_field"]).max() > 1.0 and (np.abs(ref["fake_image"]) < 0.9).mean() > 0.5


def test_one_entry_filled_differently_is_detected(case):
    net, image, coeffs, ref = case
    weight = net.warpping_net.hourglass.encoder.encoder0.conv_0.weight
    with torch.no_grad():
        weight[0, 0, 0, 0] += 0.05
    try:
        with torch.inference_mode():
            out = net(image, coeffs)
    finally:
        with torch.no_grad():
            weight[0, 0, 0, 0] -= 0.05
    assert max_diff(out["fake_image"], ref["fake_image"]) > 100 * TOLERANCE


def test_warp_stage_and_official_dead_branch(case):
    """stage='warp' skips the editing net; the editing res blocks' conv1 is unused, as in the official code."""
    net, image, coeffs, ref = case
    descriptor = torch.from_numpy(ref["descriptor"])
    warped = torch.from_numpy(ref["warp_image"])
    dead = net.editing_net.decoder.res2.res0.conv1.weight
    saved = dead.detach().clone()
    with torch.no_grad():
        dead.mul_(3.0)
    try:
        with torch.inference_mode():
            fake = net.editing_net(image, warped, descriptor)
    finally:
        with torch.no_grad():
            dead.copy_(saved)
    assert max_diff(fake, ref["fake_image"]) <= TOLERANCE
    with torch.inference_mode():  # a 64x64 input keeps this cheap: only the stage logic is checked
        warp_only = net(image[:, :, ::4, ::4].contiguous(), coeffs, stage="warp")
    assert set(warp_only) == {"flow_field", "warp_image"} and warp_only["flow_field"].shape == (1, 2, 16, 16)
