"""Seeded runs' face parser: 19-class labels drawn from real dlib landmarks (astronaut photo)."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from talkingface.face.landmark_parsing import LandmarkParser, labels_from_landmarks
from talkingface.face.landmarks import DlibLandmarks

MOUTH_CLASSES = (10, 11, 12)
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12)


@pytest.fixture(scope="module")
def parser() -> LandmarkParser:
    return LandmarkParser(DlibLandmarks())


def test_synthetic_landmarks_give_classes_where_they_belong():
    # a square face: jaw along the bottom half of a circle, lips around (50, 70), eyes at y=40
    angles = np.linspace(np.pi, 0, 17)
    jaw = np.stack([50 - 40 * np.cos(angles), 50 + 40 * np.sin(angles)], 1)
    brows = np.stack([np.linspace(15, 85, 10), np.full(10, 25.0)], 1)
    bridge = np.stack([np.full(4, 50.0), np.linspace(35, 50, 4)], 1)
    nostrils = np.array([[44, 55], [47, 57], [50, 58], [53, 57], [56, 55]], float)
    nose = np.concatenate([bridge, nostrils])
    circle = np.linspace(0, 2 * np.pi, 7)[:-1]
    eyes = np.concatenate([np.stack([cx + 6 * np.cos(circle), 40 + 3 * np.sin(circle)], 1) for cx in (30, 70)])
    outer = np.stack([50 - 15 * np.cos(np.linspace(0, 2 * np.pi, 13)[:-1]),
                      70 - 8 * np.sin(np.linspace(0, 2 * np.pi, 13)[:-1])], 1)
    inner = np.stack([50 - 8 * np.cos(np.linspace(0, 2 * np.pi, 9)[:-1]),
                      70 - 3 * np.sin(np.linspace(0, 2 * np.pi, 9)[:-1])], 1)
    lm = np.concatenate([jaw, brows, nose, eyes, outer, inner]).astype(np.float32)
    assert lm.shape == (68, 2)
    labels = labels_from_landmarks(lm, (100, 100))
    assert labels.shape == (100, 100) and labels.dtype == np.int64
    assert labels[70, 50] == 10          # inside the inner lip: mouth
    assert labels[63, 50] == 11          # between outer and inner contour, above: upper lip
    assert labels[77, 50] == 12          # below: lower lip
    assert labels[40, 30] == 4 or labels[40, 30] == 5  # an eye
    assert labels[60, 20] == 1           # cheek: skin
    assert labels[5, 5] == 0 and labels[95, 5] == 0  # corners: background


def test_astronaut_mouth_and_face_masks(parser):
    image = data.astronaut()
    lm = parser.points(image)
    labels = parser(image)
    assert labels.shape == image.shape[:2]
    mouth = np.isin(labels, MOUTH_CLASSES)
    face = np.isin(labels, FACE_CLASSES)
    ys, xs = np.nonzero(mouth)
    # the mouth mask sits on the lip landmarks (corners 48/54), within 2 px
    assert abs(xs.min() - lm[48, 0]) <= 2 and abs(xs.max() - lm[54, 0]) <= 2
    assert lm[50:53, 1].min() - 2 <= ys.min() and ys.max() <= lm[56:59, 1].max() + 2
    # the face mask covers the mouth, eyes and nose tip, and not the image corners
    assert face[mouth].all()
    for point in (lm[36:42].mean(0), lm[42:48].mean(0), lm[30]):
        assert face[int(point[1]), int(point[0])]
    assert not face[0, 0] and not face[-1, -1]
    assert 0.02 < face.mean() < 0.3


def test_tight_face_box_falls_back_to_the_whole_image_as_the_face(parser):
    image = data.astronaut()
    lm = parser.points(image)
    x1, y1 = np.floor(lm.min(0)).astype(int) + [8, 8]
    x2, y2 = np.ceil(lm.max(0)).astype(int) - [8, 0]
    tight = np.ascontiguousarray(image[y1:y2, x1:x2])
    labels = parser(tight)
    mouth = np.isin(labels, MOUTH_CLASSES)
    assert mouth.any() and mouth[: tight.shape[0] // 2].sum() < mouth.sum() * 0.1  # mouth in the lower half
