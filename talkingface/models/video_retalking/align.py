"""Crop by an FFHQ-style oriented quad and paste back.

The quads come from :func:`talkingface.face.croper.ffhq_quad`. The reference
does this with PIL QUAD / PERSPECTIVE transforms; here it is one homography per
frame with OpenCV (same geometry, no PIL round trips).
"""
from __future__ import annotations

import cv2
import numpy as np


def _square(size: int) -> np.ndarray:
    return np.float32([[0, 0], [0, size], [size, size], [size, 0]])


def crop_by_quad(image: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """The quad's content warped to a ``size`` square (bilinear)."""
    h = cv2.getPerspectiveTransform(np.float32(quad + 0.5), _square(size))
    return cv2.warpPerspective(image, h, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def paste_by_quad(crop: np.ndarray, quad: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Inverse of :func:`crop_by_quad`: warp ``crop`` back into ``background`` inside the quad."""
    size = crop.shape[0]
    h = cv2.getPerspectiveTransform(_square(size), np.float32(quad + 0.5))
    height, width = background.shape[:2]
    warped = cv2.warpPerspective(crop, h, (width, height), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.full(crop.shape[:2], 255, np.uint8), h, (width, height), flags=cv2.INTER_NEAREST)
    out = background.copy()
    out[inside > 127] = warped[inside > 127]
    return out
