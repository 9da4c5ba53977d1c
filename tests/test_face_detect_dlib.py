"""Real weights offline: dlib face + 68 points, the FFHQ clip crop (Croper), dlib landmarks on crops."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import data

from talkingface.errors import CheckpointError, ConfigError, NoFaceError
from talkingface.face.croper import Croper, crop_geometry, ffhq_quad
from talkingface.face.landmarks import DlibLandmarks, fill_missing, make_landmarks

FIXTURE = Path(__file__).parent / "fixtures" / "parity" / "Croper.astronaut.npz"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def croper() -> Croper:
    return Croper()


@pytest.fixture(scope="module")
def clip(croper, astronaut):
    return croper.crop_clip(np.stack([astronaut] * 3))


def test_dlib_landmarks_on_the_astronaut(croper, astronaut):
    lm = croper.landmarks(astronaut)
    assert lm.shape == (68, 2)
    left_eye, right_eye = lm[36:42].mean(0), lm[42:48].mean(0)
    # measured once (dlib 68-point predictor of face_recognition_models), +-3 px
    assert np.abs(left_eye - [203.2, 101.5]).max() < 3 and np.abs(right_eye - [246.5, 104.2]).max() < 3
    assert np.abs(lm[48] - [201, 139]).max() < 3 and np.abs(lm[54] - [246, 141]).max() < 3
    # plausibility: eyes above the nose tip above the mouth above the chin; mouth between the eyes in x
    assert max(left_eye[1], right_eye[1]) < lm[30, 1] < lm[48:68, 1].mean() < lm[8, 1]
    assert left_eye[0] < lm[48:68, 0].mean() < right_eye[0]


def test_croper_matches_the_reference_croper(clip):
    """Box and quad equal those of the reference Croper.crop on the same frames (fixture)."""
    with np.load(FIXTURE) as ref:
        assert np.array_equal(clip.landmarks, ref["lm"])
        assert clip.box.tolist() == ref["box"].tolist()  # (116, 0, 333, 215): clipped at the top
        assert np.abs(clip.quad - ref["quad"]).max() < 1e-9
        lx, ly, rx, ry = (int(v) for v in clip.quad)
        assert [ry - ly, rx - lx, 3] == ref["crop_shape"].tolist()
    assert clip.crops.shape == (3, 256, 256, 3) and clip.frame_index == 0
    assert np.array_equal(clip.crops[0], clip.crops[2])


def test_crop_maps_landmarks_consistently(clip):
    """dlib on the 256 crop finds the frame's landmarks mapped through the returned box and quad."""
    clx, cly = clip.box[:2]
    lx, ly, rx, ry = (int(v) for v in clip.quad)
    origin = np.array([clx + lx, cly + ly], np.float64)
    scale = np.array([256.0 / (rx - lx), 256.0 / (ry - ly)])
    expected = (clip.landmarks - origin) * scale
    lm, missing = DlibLandmarks()(clip.crops[:1])
    assert missing == []
    for part in (slice(36, 42), slice(42, 48), slice(48, 68)):  # eyes and mouth
        assert np.abs(lm[0][part].mean(0) - expected[part].mean(0)).max() < 3.0
    # FFHQ framing: eyes in the upper half, centred, mouth in the lower half of the crop
    eyes = lm[0][36:48].mean(0)
    assert 100 < eyes[1] < 140 and abs(eyes[0] - 128) < 15 and 160 < lm[0][48:68, 1].mean() < 190


def test_ffhq_quad_is_a_square_around_the_face(clip):
    quad = ffhq_quad(clip.landmarks)
    sides = np.linalg.norm(np.roll(quad, -1, 0) - quad, axis=1)
    assert np.allclose(sides, sides[0]) and 150 < sides[0] < 200
    box, rel = crop_geometry(clip.landmarks, (512, 512))
    assert np.array_equal(box, clip.box) and np.allclose(rel, clip.quad)


def test_croper_single_frame_and_no_face(croper, astronaut):
    crops, box, quad = croper.crop(astronaut[None])  # an image: the reference's search loop skips it
    assert crops.shape == (1, 256, 256, 3) and box.tolist() == [116, 0, 333, 215]
    blank = np.full((4, 96, 96, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="any of the 4 frame"):
        croper.crop(blank)


def test_croper_searches_the_first_half_for_a_face(croper, astronaut):
    frames = np.stack([np.zeros_like(astronaut), astronaut, astronaut, astronaut])
    found = croper.crop_clip(frames)
    assert found.frame_index == 1 and found.box.tolist() == [116, 0, 333, 215]
    # a face only in the second half: found there (the reference gives up after the first half)
    late = np.stack([np.zeros_like(astronaut)] * 3 + [astronaut])
    assert croper.crop_clip(late).frame_index == 3


def test_fill_missing_policy():
    a, b = np.full((68, 2), 1.0), np.full((68, 2), 2.0)
    lm, missing = fill_missing([None, a, None, None, b, None])
    assert missing == [0, 2, 3, 5]
    assert [float(x[0, 0]) for x in lm] == [-1, 1, 1, 1, 2, 2]  # the official: previous; none before -> -1
    lm, missing = fill_missing([None, a, None, None, b, None], gaps="nearest")
    assert [float(x[0, 0]) for x in lm] == [1, 1, 1, 1, 2, 2]  # previous, else the first detection
    lm, missing = fill_missing([None, None])
    assert missing == [0, 1] and np.all(lm == -1)  # the reference's "no face" marker


def test_dlib_landmarks_report_missing_frames(caplog, clip):
    frames = np.stack([np.zeros_like(clip.crops[0]), clip.crops[0]])
    with caplog.at_level("WARNING"):
        lm, missing = make_landmarks("dlib")(frames)
    assert missing == [0] and np.all(lm[0] == -1) and np.all(lm[1] > 0)  # official: no face before -> marker
    assert "no face in 1 of 2" in caplog.text


def test_make_landmarks_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown landmarks"):
        make_landmarks("mediapipe")
    with pytest.raises(CheckpointError, match="not found"):
        DlibLandmarks(tmp_path / "absent.dat")
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"not a predictor")
    with pytest.raises(CheckpointError, match="not a dlib shape predictor"):
        Croper(bad)
