"""Face-parsing labels drawn from 68 landmarks: the parser of seeded runs.

ParseNet with seeded-v1 weights labels pixels at random, so a seeded run that
used it would blend the lip-synced mouth into arbitrary patches (or nowhere).
dlib's 68-point predictor ships with a package and is real offline, so seeded
runs draw the same 19-class label map from landmarks instead: skin from the
jaw/brow hull, brows, eyes, nose, upper/lower lip and the inner mouth, with
ParseNet's class numbers (see :mod:`talkingface.face.parsing`). The result is
coarser than ParseNet's but anatomically right, which is what the blending
stages need to be exercised for real.
"""
from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

SKIN, NOSE, L_EYE, R_EYE, L_BROW, R_BROW, MOUTH, U_LIP, L_LIP = 1, 2, 4, 5, 6, 7, 10, 11, 12

#: 68-point index runs of the iBUG layout
JAW, R_BROW_PTS, L_BROW_PTS = range(0, 17), range(17, 22), range(22, 27)
NOSE_PTS, R_EYE_PTS, L_EYE_PTS = range(27, 36), range(36, 42), range(42, 48)
OUTER_LIP, INNER_LIP = range(48, 60), range(60, 68)
UPPER_LIP = (48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)


def labels_from_landmarks(lm68: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) int64 class labels of one face from its (68, 2) x/y landmarks."""
    lm = np.asarray(lm68, np.float32)
    labels = np.zeros(shape[:2], np.uint8)

    def fill(indices: Any, value: int, hull: bool = False) -> None:
        points = np.round(lm[list(indices)]).astype(np.int32)
        if hull:
            points = cv2.convexHull(points)
        cv2.fillPoly(labels, [points.reshape(-1, 1, 2)], int(value))

    fill(list(JAW) + list(R_BROW_PTS) + list(L_BROW_PTS), SKIN, hull=True)
    thickness = max(1, int(round(np.ptp(lm[JAW, 0]) / 40)))
    for indices, value in ((R_BROW_PTS, R_BROW), (L_BROW_PTS, L_BROW)):
        points = np.round(lm[list(indices)]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(labels, [points], False, value, thickness)
    fill(R_EYE_PTS, R_EYE)
    fill(L_EYE_PTS, L_EYE)
    fill(NOSE_PTS, NOSE, hull=True)
    fill(OUTER_LIP, L_LIP)
    fill(UPPER_LIP, U_LIP)
    fill(INNER_LIP, MOUTH)
    return labels.astype(np.int64)


class LandmarkParser:
    """``image (h, w, 3) RGB -> (h, w) labels`` from dlib landmarks of the face in it.

    The image is a face box (as the pipeline hands it), which can be too tight
    for dlib's detector; the shape predictor then runs on the whole image as
    the face rectangle. An image where that yields nothing usable is all
    background (label 0), so nothing is blended there.
    """

    def __init__(self, landmarks: Any) -> None:
        self.landmarks = landmarks  # a DlibLandmarks (its detector and predictor are reused)

    def points(self, image: np.ndarray) -> np.ndarray:
        from talkingface.face.dlib_detect import dlib_rect, predict_points

        image = np.ascontiguousarray(image)
        found = self.landmarks.points(image)
        if found is not None:
            return found
        h, w = image.shape[:2]
        return predict_points(self.landmarks.predictor, image, dlib_rect((0, 0, w, h)))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return labels_from_landmarks(self.points(image), np.asarray(image).shape[:2])
