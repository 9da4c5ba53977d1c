"""Whole-image restoration (GPEN FaceEnhancer, GFPGANRestorer) with small seeded nets on a real face."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from talkingface.face import gfpgan, gpen, parsing, restore


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def detector():
    from talkingface.face.dlib_detect import DlibFivePointDetector

    return DlibFivePointDetector()


@pytest.fixture(scope="module")
def detections(astronaut, detector):
    boxes, points = detector(astronaut)
    assert len(boxes) == 1  # the astronaut's face
    return boxes, points


def _far_from(box: np.ndarray, shape: tuple[int, ...], margin: float = 0.8) -> np.ndarray:
    x1, y1, x2, y2 = box[:4]
    w, h = x2 - x1, y2 - y1
    far = np.ones(shape[:2], bool)
    far[max(0, int(y1 - margin * h)):int(y2 + margin * h), max(0, int(x1 - margin * w)):int(x2 + margin * w)] = False
    return far


def test_reference_points_and_umeyama():
    pts = restore.gpen_reference_points(512)
    assert np.allclose(pts[0], [(30.29459953 + 8 + 28) * 512 / 168, (51.69630051 + 28) * 512 / 168])
    assert pts[2, 0] == pytest.approx(256, abs=2)  # nose near the vertical centre line
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = 0.4, 2.5, np.array([10.0, -4.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = s * src @ rot.T + t
    m, scale = restore.umeyama(src, dst)
    assert scale == pytest.approx(s) and np.allclose(m[:2, :2], s * rot) and np.allclose(m[:2, 2], t)
    inv, _ = restore.umeyama(dst, src, False, 1 / scale)
    assert np.allclose(inv @ m, np.eye(3), atol=1e-9)


def test_gpen_face_enhancer(astronaut, detector, detections):
    net = gpen.load_gpen(weights="seeded", size=64, narrow=0.125)
    parse_net = parsing.load_parsenet(weights="seeded", size=64)
    enhancer = restore.FaceEnhancer(net, parse_net, detector)
    assert enhancer.size == 64
    out = enhancer.process(astronaut, astronaut, face_enhance=True, poisson_blending=False)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    far = _far_from(detections[0][0], astronaut.shape, margin=1.5)  # the 512 crop is ~2.4x the box
    assert np.array_equal(out[far], astronaut[far])
    box = detections[0][0].astype(int)
    face = (slice(box[1], box[3]), slice(box[0], box[2]))
    changed = np.abs(out[face].astype(int) - astronaut[face]).max(-1) > 2
    assert changed.mean() > 0.05  # seeded nets parse some face pixels and replace them
    # blending branches and the no-face path
    blended = enhancer.process(astronaut, astronaut, bbox=(150, 300, 150, 300), face_enhance=False, poisson_blending=True)
    assert blended.shape == astronaut.shape and blended.dtype == np.uint8
    nobody = restore.FaceEnhancer(net, parse_net, lambda im: (np.zeros((0, 5)), np.zeros((0, 5, 2))))
    assert np.array_equal(nobody.process(astronaut, astronaut), astronaut)


def test_gfpgan_restorer(astronaut, detector, detections):
    net = gfpgan.load_gfpgan(weights="seeded", size=64, narrow=0.125, num_style_feat=64)
    restorer = restore.GFPGANRestorer(net, detector)
    out = restorer.enhance(astronaut, only_center_face=True, paste_back=True)
    assert out.shape == astronaut.shape and out.dtype == np.uint8
    far = _far_from(detections[0][0], astronaut.shape, margin=1.0)
    assert np.array_equal(out[far], astronaut[far])
    eyes = detections[1][0][:2].mean(0).astype(int)
    patch = (slice(eyes[1] - 10, eyes[1] + 10), slice(eyes[0] - 10, eyes[0] + 10))
    assert np.abs(out[patch].astype(int) - astronaut[patch]).mean() > 5  # the face itself was replaced
    assert np.array_equal(out, restorer.enhance(astronaut))  # stored noise: reproducible
    face = restorer.enhance(astronaut, paste_back=False)
    assert face.shape == (64, 64, 3)
    blank = np.full((80, 80, 3), 7, np.uint8)
    assert np.array_equal(restore.GFPGANRestorer(net, lambda im: (np.zeros((0, 5)), np.zeros((0, 5, 2)))).enhance(blank),
                          blank)


def test_center_face_and_soft_mask():
    boxes = np.array([[0, 0, 10, 10, 1], [45, 45, 55, 55, 1], [80, 0, 100, 20, 1]], np.float32)
    assert restore.center_face_index(boxes, 100, 100) == 1
    assert restore.center_face_index(boxes, 100, 100, point=(88, 12)) == 2  # the face the pipeline edits
    inverse = np.array([[0.5, 0, 20], [0, 0.5, 30]], np.float64)
    soft, hard = restore.soft_paste_mask(inverse, 64, 100, 100)
    assert soft.shape == hard.shape == (100, 100)
    assert soft[30 + 16, 20 + 16] == pytest.approx(1.0) and soft[5, 5] == 0 and hard[5, 5] == 0
    assert ((soft > 0) & (soft < 1)).sum() > 100  # a soft rim, not a hard edge
    assert hard.sum() == pytest.approx(31 * 31) and soft[hard == 0].max() <= 0.25
    assert soft.max() <= 1.0 and soft.min() >= 0.0


def test_gfpgan_restores_the_face_near_the_given_point(astronaut, detector):
    """Two people: the face the pipeline edits (``near``) is restored, the other is left alone."""
    import cv2

    net = gfpgan.load_gfpgan(weights="seeded", size=64, narrow=0.125, num_style_feat=64)
    restorer = restore.GFPGANRestorer(net, detector)
    head = cv2.resize(astronaut[:300, 100:400], (240, 240))
    canvas = np.full((300, 800, 3), 200, np.uint8)
    canvas[30:270, 40:280] = head  # left person, further from the centre (400, 150)
    canvas[30:270, 420:660] = head  # right person, nearest the centre
    boxes, _ = detector(canvas)
    assert len(boxes) == 2
    left = canvas[:, :340].astype(int)
    right = canvas[:, 360:].astype(int)
    default = restorer.enhance(canvas).astype(int)  # the reference's rule: the centre face
    assert np.array_equal(default[:, :340], left) and np.abs(default[:, 360:] - right).mean() > 1
    chosen = restorer.enhance(canvas, near=(160, 150)).astype(int)
    assert np.array_equal(chosen[:, 360:], right) and np.abs(chosen[:, :340] - left).mean() > 1
