"""Laplacian-pyramid blending of two images under a soft mask.

Same pyramid as the reference ``Laplacian_Pyramid_Blending_with_mask``
(``utils/inference_utils.py``): Gaussian levels by ``cv2.pyrDown`` kept in the
input dtype (uint8 inputs are rounded at every level, as there), the coarsest
band is Gaussian level ``levels - 1``, each band is blended with the mask's
Gaussian level of the same size, and the result is rebuilt with ``cv2.pyrUp``
+ ``cv2.add``. Each OpenCV call works on whole multi-channel images.

Two things differ on purpose: ``pyrUp`` is given the finer level's size, so
sizes that are not multiples of ``2**levels`` work (the reference needs
512x512); and a mask that is all ones (all zeros) returns ``a`` (``b``)
exactly — the rebuild adds and subtracts the same bands, which is exact only
up to float rounding.
"""
from __future__ import annotations

import cv2
import numpy as np


def _gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Level 0 as given; levels 1..``levels`` from ``pyrDown`` chained in the input dtype, as float32."""
    pyramid = [image]
    current = image
    for _ in range(levels):
        current = cv2.pyrDown(current)
        pyramid.append(np.float32(current))
    return pyramid


def _up(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cv2.pyrUp(image, dstsize=(like.shape[1], like.shape[0]))


def laplacian_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int = 6) -> np.ndarray:
    """``a`` where ``mask`` is 1, ``b`` where it is 0, blended band by band: float32 (H, W, C).

    ``a`` and ``b`` are (H, W, C) of one dtype (uint8 or float32); ``mask`` is
    (H, W) or (H, W, 1) in [0, 1]. The result is not clipped (the reference
    clips after resizing back), except that an all-ones / all-zeros mask gives
    ``a`` / ``b`` unchanged.
    """
    a, b = np.asarray(a), np.asarray(b)
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if a.shape != b.shape or a.ndim != 3 or mask.shape != a.shape[:2]:
        raise ValueError(f"laplacian_blend: a {a.shape}, b {b.shape} must be equal (H, W, C) and mask "
                         f"{mask.shape} must be (H, W)")
    if levels < 1:
        raise ValueError(f"laplacian_blend: levels must be >= 1, got {levels}")
    if np.all(mask == 1.0):
        return a.astype(np.float32)
    if np.all(mask == 0.0):
        return b.astype(np.float32)
    ga, gb, gm = (_gaussian_pyramid(x, levels) for x in (a, b, mask))
    top = levels - 1
    blended = []
    for i in range(top, -1, -1):
        if i == top:  # coarsest band: the Gaussian level itself
            la, lb = ga[i], gb[i]
        else:
            la = np.subtract(ga[i], _up(ga[i + 1], ga[i]), dtype=np.float32)
            lb = np.subtract(gb[i], _up(gb[i + 1], gb[i]), dtype=np.float32)
        m = gm[i][:, :, None]
        blended.append(la * m + lb * (1.0 - m))
    out = blended[0]
    for band in blended[1:]:
        out = cv2.add(_up(out, band), band)
    return out
