"""Batched GPEN reference enhancement equals the per-image FaceEnhancer (small seeded nets, real face)."""
from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from talkingface.accel.batched_enhance import enhance_batch
from talkingface.face import gpen, parsing, restore
from talkingface.face.dlib_detect import DlibFivePointDetector


def test_enhance_batch_equals_per_image_process():
    astronaut = np.ascontiguousarray(data.astronaut())
    shifted = np.ascontiguousarray(np.roll(astronaut, (12, -20), axis=(0, 1)))
    blank = np.full((256, 256, 3), 127, np.uint8)  # no face: returned unchanged
    small = np.ascontiguousarray(cv2.resize(astronaut, (256, 256)))
    net = gpen.load_gpen(weights="seeded", size=64, narrow=0.125)
    parse_net = parsing.load_parsenet(weights="seeded", size=64)
    enhancer = restore.FaceEnhancer(net, parse_net, DlibFivePointDetector())
    images = [astronaut, blank, shifted, small]
    expected = [enhancer.process(im, im, face_enhance=True, poisson_blending=False) for im in images]
    got = enhance_batch(enhancer, images)
    for e, g, im in zip(expected, got, images):
        assert g.dtype == np.uint8 and g.shape == im.shape
        assert np.abs(g.astype(int) - e.astype(int)).max() <= 1  # batched conv summation order only
    assert np.array_equal(got[1], blank)
    assert np.abs(got[0].astype(int) - astronaut).max() > 20  # the face really was restored
