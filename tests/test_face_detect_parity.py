"""Face detectors and FAN vs the reference implementations (seeded-v1 parity fixtures).

Fixtures: tests/fixtures/parity/{S3FD,SyncNetS3FD,RetinaFace,FAN}.seed0.npz, made by running the
reference code (see tests/fixtures/parity/README.md). Inputs are redrawn with ``seeded_input``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.face import fan as fan_mod
from talkingface.face import retinaface, s3fd, syncnet_s3fd
from talkingface.face.landmarks import FANLandmarks
from talkingface.weights.seeded import fill_seeded_, seeded_input

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
TOL = 1e-4


def fixture(name: str) -> dict:
    with np.load(FIXTURES / f"{name}.seed0.npz") as z:
        data = {k: z[k] for k in z.files}
    data["meta"] = json.loads(str(data["meta"]))
    return data


def keys_of(name: str) -> dict[str, list[int]]:
    return json.loads((FIXTURES / f"{name}.keys.json").read_text())


def assert_keys(module: torch.nn.Module, name: str) -> None:
    ours = {k: list(v.shape) for k, v in module.state_dict().items()}
    assert ours == keys_of(name)


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if np.size(a) else 0.0


#: Decoded box coordinates are pixels (up to a few hundred) computed from float32 conv
#: maps whose rounding differs between CPUs (AVX2 vs AVX-512 kernels, thread count): a
#: few ulps of a coordinate of 220 is ~2e-4, so boxes get TOL plus 1e-6 of their size.
BOX_RTOL = 1e-6


def assert_boxes_close(ours, expected) -> None:
    np.testing.assert_allclose(np.asarray(ours, np.float64), np.asarray(expected, np.float64),
                               rtol=BOX_RTOL, atol=TOL)


@pytest.fixture(scope="module")
def s3fd_net() -> s3fd.S3FD:
    return fill_seeded_(s3fd.S3FD(), 0).eval()


# ------------------------------------------------------------------ S3FD (face-alignment layout)
def test_s3fd_keys_and_raw_outputs(s3fd_net):
    ref = fixture("S3FD")
    assert_keys(s3fd_net, "S3FD")
    x = torch.from_numpy(seeded_input("s3fd_x", (1, 3, 128, 128), 0, low=-128.0, high=128.0))
    with torch.inference_mode():
        outs = s3fd_net(x)
    assert len(outs) == 12
    for i, out in enumerate(outs):
        assert out.shape == ref[f"out{i}"].shape
        assert max_diff(out, ref[f"out{i}"]) <= TOL, f"out{i}"


def test_s3fd_lnet_detections_match_reference(s3fd_net):
    """third_part/face_detection: the net sees RGB (BGR frames reversed), float32 decode, NMS 0.3, > 0.5."""
    ref = fixture("S3FD")
    frames = ref["frames_rgb"]
    det = s3fd.S3FDDetector(s3fd_net, channel_order="rgb")
    found = det.detect(frames)
    for i, d in enumerate(found):
        expected = ref[f"lnet_dets{i}"]
        assert d.shape == expected.shape and len(d) > 100
        assert_boxes_close(d, expected)
    assert det.first_faces(frames, batch_size=1) == [tuple(r) for r in ref["lnet_first"].tolist()]


def test_s3fd_face_alignment_detections_match_reference(s3fd_net):
    """face-alignment 1.3.4 (in front of FAN): RGB flipped to BGR, float64 decode."""
    ref = fixture("S3FD")
    det = s3fd.S3FDDetector(s3fd_net, channel_order="bgr", decode_dtype=torch.float64)
    d = det.detect(ref["frames_rgb"][:1])[0]
    assert d.shape == ref["fa_dets0"].shape
    assert_boxes_close(d, ref["fa_dets0"])
    # the channel order matters: the RGB path finds other boxes on the same frame
    assert not np.array_equal(d.shape, ref["lnet_dets0"].shape) or max_diff(d, ref["lnet_dets0"]) > 1.0


# ------------------------------------------------------------------ S3FD (syncnet_python layout)
def test_syncnet_s3fd_keys_detect_and_detect_faces():
    ref = fixture("SyncNetS3FD")
    net = fill_seeded_(syncnet_s3fd.SyncNetS3FD(), 0).eval()
    assert_keys(net, "SyncNetS3FD")
    x = torch.from_numpy(seeded_input("s3fd_x", (1, 3, 128, 128), 0, low=-128.0, high=128.0))
    with torch.inference_mode():
        loc, conf, sizes = net(x)
        out = syncnet_s3fd.syncnet_detect(loc, conf, syncnet_s3fd.syncnet_priors((128, 128), sizes))
    assert out.shape == ref["detect"].shape
    assert int((ref["detect"][0, 1, :, 0] > 0).sum()) == int((out[0, 1, :, 0] > 0).sum()) > 100
    assert max_diff(out, ref["detect"]) <= TOL
    faces = syncnet_s3fd.SyncNetS3FDDetector(net).detect_faces(ref["image"], conf_th=0.5, scales=[0.5, 1.0])
    assert faces.shape == ref["faces"].shape and len(faces) > 10
    assert max_diff(faces, ref["faces"]) <= TOL


def test_the_two_s3fd_files_have_different_layouts():
    """sfd_face.pth cannot load into the face-alignment module (and vice versa): different keys."""
    fa_keys, sn_keys = keys_of("S3FD"), keys_of("SyncNetS3FD")
    assert set(fa_keys).isdisjoint(sn_keys)
    assert sorted(map(tuple, fa_keys.values())) == sorted(map(tuple, sn_keys.values()))  # same shapes


# ------------------------------------------------------------------ RetinaFace-R50
RETINA_OVERRIDES = {"ClassHead.*.conv1x1.weight": {"gain": 0.01}, "BboxHead.*.conv1x1.weight": {"gain": 0.01},
                    "LandmarkHead.*.conv1x1.weight": {"gain": 0.01}}


def test_retinaface_keys_outputs_and_detections():
    ref = fixture("RetinaFace")
    assert ref["meta"]["overrides"] == RETINA_OVERRIDES
    net = fill_seeded_(retinaface.RetinaFace(), 0, RETINA_OVERRIDES).eval()
    assert_keys(net, "RetinaFace")
    x = torch.from_numpy(seeded_input("retina_x", (1, 3, 128, 96), 0, low=-128.0, high=128.0))
    with torch.inference_mode():
        loc, conf, landms = net(x)
    for ours, name in ((loc, "loc"), (conf, "conf"), (landms, "landms")):
        assert ours.shape == ref[name].shape
        assert max_diff(ours, ref[name]) <= TOL, name
    det = retinaface.RetinaFaceDetector(net, confidence_threshold=0.5)
    dets, points = det(ref["image"])
    assert dets.shape == ref["dets"].shape and len(dets) > 50
    assert max_diff(dets, ref["dets"]) <= TOL
    # reference rows are x1..x5, y1..y5
    expected = np.stack([ref["landmarks"][:, :5], ref["landmarks"][:, 5:]], -1)
    assert max_diff(points, expected) <= TOL


def test_retinaface_priors_follow_the_feature_maps():
    priors = retinaface.prior_boxes(100, 60)  # ceil(100/8)=13, ceil(60/8)=8, ...
    assert priors.shape == ((13 * 8 + 7 * 4 + 4 * 2) * 2, 4)
    assert torch.allclose(priors[0], torch.tensor([4 / 60, 4 / 100, 16 / 60, 16 / 100]))
    assert torch.allclose(priors[1, 2:], torch.tensor([32 / 60, 32 / 100]))


# ------------------------------------------------------------------ FAN
@pytest.fixture(scope="module")
def fan_net() -> fan_mod.FAN:
    return fill_seeded_(fan_mod.FAN(4), 0).eval()


def test_fan_keys_and_heatmaps(fan_net):
    ref = fixture("FAN")
    assert_keys(fan_net, "FAN")
    x = torch.from_numpy(seeded_input("fan_x", (1, 3, 64, 64), 0, low=0.0, high=1.0))
    with torch.inference_mode():
        hm = fan_net(x)
    assert hm.shape == ref["heatmaps"].shape
    scale = max(1.0, float(np.abs(ref["heatmaps"]).max()))
    assert max_diff(hm, ref["heatmaps"]) <= TOL * scale


def test_fan_landmarks_end_to_end_match_face_alignment(s3fd_net, fan_net):
    """S3FD (BGR, float64) -> first face -> 256 crop -> FAN -> integer landmarks, as face-alignment 1.3.4."""
    ref = fixture("FAN")
    image = ref["image"]
    det = s3fd.S3FDDetector(s3fd_net, channel_order="bgr", decode_dtype=torch.float64)
    box = det.detect(image[None])[0][0]
    assert_boxes_close(box, ref["box"])
    centre, scale = fan_mod.center_scale(ref["box"])
    crop = fan_mod.crop_face(image, centre, scale)
    assert hashlib.sha256(crop.tobytes()).hexdigest() == str(ref["crop_sha256"])
    lm, missing = FANLandmarks(det, fan_net)(image[None])
    assert missing == []
    assert np.array_equal(lm[0], ref["landmarks"])


class _EveryOtherFrame:
    """Wraps a detector so that odd frames have no face."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def detect(self, images):
        self.calls += 1
        return self.inner.detect(images) if self.calls % 2 == 1 else [np.zeros((0, 5))]


def test_fan_frames_without_face_reuse_previous_landmarks(s3fd_net, fan_net):
    ref = fixture("FAN")
    det = _EveryOtherFrame(s3fd.S3FDDetector(s3fd_net, channel_order="bgr", decode_dtype=torch.float64))
    lm, missing = FANLandmarks(det, fan_net, batch_size=1)(np.stack([ref["image"]] * 2))
    assert missing == [1]
    assert np.array_equal(lm[0], ref["landmarks"]) and np.array_equal(lm[1], lm[0])


def test_heatmap_peaks_quarter_pixel_rule():
    hm = np.zeros((1, 3, 64, 64), np.float32)
    hm[0, 0, 10, 20] = 1.0
    hm[0, 0, 10, 21] = 0.5  # right neighbour larger -> +0.25 in x; vertical tie -> 0
    hm[0, 1, 0, 5] = 1.0  # on the border: no nudge
    hm[0, 2, 30, 30] = 1.0
    hm[0, 2, 29, 30] = 0.2  # upper neighbour larger -> -0.25 in y
    peaks = fan_mod.heatmap_peaks(hm)[0]
    assert np.allclose(peaks[0], [20 + 1 + 0.25 - 0.5, 10 + 1 - 0.5])
    assert np.allclose(peaks[1], [5 + 1 - 0.5, 0 + 1 - 0.5])
    assert np.allclose(peaks[2], [30 + 1 - 0.5, 30 + 1 - 0.25 - 0.5])
