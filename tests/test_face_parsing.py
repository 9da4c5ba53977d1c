"""Face parsing: reference keys at 512, seeded-v1 parity at 128 (same code), mask selection logic."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from networks_parity import load_fixture, module_keys, reference_keys
from talkingface.errors import CheckpointError, InputMediaError
from talkingface.face import parsing
from talkingface.weights.seeded import seeded_state_dict


@pytest.fixture(scope="module")
def small():
    arrays, meta = load_fixture("ParseNet")
    net = parsing.load_parsenet(weights="seeded", seed=meta["seed"], size=meta["size"])
    return net, arrays


def test_keys_and_shapes_equal_reference_512():
    assert module_keys(parsing.ParseNet()) == reference_keys("ParseNet")


def test_forward_matches_reference(small):
    net, ref = small
    image = ref["image"]
    resized = parsing.cv2.resize(image, (128, 128))
    x = torch.from_numpy(resized / 255.0 * 2 - 1).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        logits, out_img = net(x)
    scale = float(np.abs(ref["logits_sub"]).max())
    assert np.abs(logits[:, :, ::4, ::4].numpy() - ref["logits_sub"]).max() <= 1e-5 * max(1.0, scale)
    assert np.abs(out_img.numpy() - ref["out_img"]).max() <= 1e-5 * max(1.0, float(np.abs(ref["out_img"]).max()))
    labels = parsing.parse_labels(net, image)
    assert (labels == ref["labels"]).mean() > 0.999
    assert len(np.unique(ref["labels"])) >= 8  # informative fixture: many classes present


def test_parse_mask_shape_range_and_selection(small):
    net, ref = small
    image = ref["image"]
    mask = parsing.parse_mask(net, image, parsing.FACE_CLASSES)
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    everything = parsing.parse_mask(net, image, tuple(range(19)))
    nothing = parsing.parse_mask(net, image, ())
    assert np.all(everything == 1.0) and np.all(nothing == 0.0)
    labels = ref["labels"]
    expected = np.isin(labels, parsing.FACE_CLASSES).mean()
    assert abs(float(parsing.parse_mask(net, np.ascontiguousarray(parsing.cv2.resize(image, (128, 128))),
                                        parsing.FACE_CLASSES).mean()) - expected) < 0.01
    with pytest.raises(InputMediaError):
        parsing.parse_mask(net, image[..., 0], (1,))


def test_labels_to_mask_exact_on_constructed_logits():
    logits = torch.full((1, 19, 4, 5), -1.0)
    labels_wanted = np.arange(20).reshape(4, 5) % 19
    for (i, j), c in np.ndenumerate(labels_wanted):
        logits[0, c, i, j] = 3.0
    labels = logits.argmax(1)[0].numpy()
    assert np.array_equal(labels, labels_wanted)
    mask = parsing.labels_to_mask(labels, (1, 2, 10, 12))
    assert mask.dtype == np.uint8
    assert np.array_equal(mask == 255, np.isin(labels_wanted, [1, 2, 10, 12]))
    assert set(np.unique(mask)) == {0, 255}


def test_loader_plain_state_dict_and_wrong_file(tmp_path):
    net = parsing.ParseNet(64)
    state = seeded_state_dict(net, 2)
    path = tmp_path / "ParseNet-latest.pth"
    torch.save(state, path)
    loaded = parsing.load_parsenet(path, size=64)
    assert torch.equal(loaded.state_dict()["out_mask_conv.conv2d.bias"], state["out_mask_conv.conv2d.bias"])
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="extra.weight"):
        parsing.load_parsenet(path, size=64)
