"""One FFHQ-style face crop for a whole clip (the reference's ``Croper``, ``utils/ffhq_preprocess.py``).

dlib finds the face and its 68 points on the first frame that has one (looking
at the first half of the clip first, as the reference), the FFHQ oriented quad is
built from the eyes and mouth corners, and the same axis-aligned region -- the
quad's bounding box inside a padded crop box -- is cut from every frame and
resized to 256x256. The crop box and the quad bounds are returned so the
pipeline can paste results back (``oy1 = cly + ly`` etc., as ``inference.py``).

Differences from the reference, all for inputs where it fails or is wrong:
a one-frame clip (an image) is searched too (the reference's loop skips it and
crashes); a face that appears only in the second half is still found (the
reference stops after the first half); a frame with nothing at 2x upsampling is
retried at 4x (faces of ~20-40 px); with several faces ``select`` picks one
(:mod:`talkingface.face.select`; None = the best-scoring, the reference's);
no face raises :class:`NoFaceError` instead of a tuple-unpack error;
the quad's bottom is clipped to the frame height (the reference clips it to
the width); the reference's "shrink" step for faces over ~2000 px is left out
(it rescales the quad but then crops the unscaled frames).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from talkingface.errors import NoFaceError

log = logging.getLogger(__name__)


def _ffhq_frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre ``c`` and half-axes ``x``, ``y`` of the FFHQ oriented square (NVlabs/ffhq-dataset).

    The one copy of this geometry: the clip crop (:func:`crop_geometry`) and the
    pipeline's per-frame quads (:func:`ffhq_quad`) both use it.
    """
    lm = np.asarray(lm, np.float64)
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    return eye_avg + eye_to_mouth * 0.1, x, y


def ffhq_quad(lm: np.ndarray) -> np.ndarray:
    """(4, 2) FFHQ quad (top-left, bottom-left, bottom-right, top-right) from 68 landmarks."""
    return _corners(*_ffhq_frame(lm))


def _corners(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def crop_geometry(lm: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Crop box ``(clx, cly, crx, cry)`` (int) and quad bounds ``(lx, ly, rx, ry)`` relative to it (float).

    ``frame_size`` is (height, width). The crop box is the quad's bounding box
    grown by 10 % of the quad size (at least 3 px), clipped to the frame.
    """
    height, width = frame_size
    c, x, y = _ffhq_frame(lm)
    quad = _corners(c, x, y)
    qsize = np.hypot(*x) * 2
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
            int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0), min(crop[2] + border, width),
            min(crop[3] + border, height))
    quad = quad - np.array(crop[:2], np.float64) + 0.5
    lx = max(min(quad[0, 0], quad[1, 0]), 0)
    ly = max(min(quad[0, 1], quad[3, 1]), 0)
    rx = min(max(quad[2, 0], quad[3, 0]), width)
    ry = min(max(quad[1, 1], quad[2, 1]), height)
    return np.array(crop, np.int64), np.array([lx, ly, rx, ry], np.float64)


@dataclass
class ClipCrop:
    crops: np.ndarray  # (T, size, size, 3) uint8
    box: np.ndarray  # (4,) clx, cly, crx, cry
    quad: np.ndarray  # (4,) lx, ly, rx, ry relative to the box
    landmarks: np.ndarray  # (68, 2) dlib points on the frame the geometry came from
    frame_index: int


class Croper:
    """dlib-based clip crop; :meth:`crop` is the pipeline's ``crop`` part.

    ``upsample``: 2x upsamplings of the first detection try (the reference's 1);
    ``max_upsample``: retried up to this when nothing is found (within
    :data:`~talkingface.face.dlib_detect.MAX_UPSAMPLED_PIXELS`); ``select``: which
    face among several (``face_select``; None = best-scoring).
    """

    def __init__(self, predictor_path: str | Path | None = None, *, root: str | Path | None = None,
                 upsample: int = 1, size: int = 256, select=None, max_upsample: int = 2) -> None:
        import dlib

        from talkingface.weights.manifest import checkpoint_path
        from talkingface.face.dlib_detect import load_shape_predictor
        from talkingface.face.select import parse_rule

        path = Path(predictor_path) if predictor_path is not None else checkpoint_path("dlib_landmarks", root)
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = load_shape_predictor(path)
        self.upsample = upsample
        self.max_upsample = max_upsample
        self.size = size
        self.select = parse_rule(select)

    def face(self, image: np.ndarray) -> np.ndarray | None:
        """``x1, y1, x2, y2, score`` of the face ``select`` picks in one RGB image, or None."""
        from talkingface.face.dlib_detect import dlib_detect
        from talkingface.face.select import pick

        dets = dlib_detect(self.detector, image, self.upsample, self.max_upsample)
        chosen = pick(dets, self.select, image.shape[:2])
        return None if chosen is None else dets[chosen]

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """68 dlib points (int-valued float64) of the selected face, or None."""
        from talkingface.face.dlib_detect import dlib_rect, predict_points

        image = np.ascontiguousarray(image)
        found = self.face(image)
        if found is None:
            return None
        return predict_points(self.predictor, image, dlib_rect(found), np.float64)

    @staticmethod
    def search_order(num_frames: int) -> list[int]:
        """The reference's search range (the first half, at least frame 0) first, then the rest."""
        half = max(1, num_frames // 2)
        return list(range(half)) + list(range(half, num_frames))

    def locate(self, frames: np.ndarray) -> ClipCrop:
        """Geometry from the first frame with a face (first half first, then the rest of the clip)."""
        from talkingface.face.select import describe

        for index in self.search_order(len(frames)):
            lm = self.landmarks(frames[index])
            if lm is not None:
                if index >= max(1, len(frames) // 2):
                    log.warning("face crop: no face in the first half of the clip; using frame %d", index)
                box, quad = crop_geometry(lm, frames.shape[1:3])
                return ClipCrop(np.empty((0,)), box, quad, lm, index)
        what = "no face" if not isinstance(self.select, int) else f"no {describe(self.select)} (face_select)"
        raise NoFaceError(f"{what} found in any of the {len(frames)} frame(s) of the clip "
                          f"(dlib HOG detector, upsampled up to {2 ** max(self.upsample, self.max_upsample)}x)",
                          hint="use a video that shows a frontal face (dlib misses profiles and faces under "
                               "~20-40 px), or zoom in on the face with --crop=top,bottom,left,right")

    def crop_clip(self, frames: np.ndarray, out: np.ndarray | None = None) -> ClipCrop:
        """``frames``: an array or any frame sequence (``len``, ``shape``, ``frames[i]``), read in order.

        ``out``: a (T, size, size, 3) uint8 array to fill (e.g. disk-backed) instead of a new one.
        """
        found = self.locate(frames)
        clx, cly, crx, cry = (int(v) for v in found.box)
        lx, ly, rx, ry = (int(v) for v in found.quad)
        height, width = frames.shape[1:3]
        y1, y2 = cly + ly, min(cry, cly + ry, height)
        x1, x2 = clx + lx, min(crx, clx + rx, width)
        if y2 <= y1 or x2 <= x1:
            raise NoFaceError(f"the face crop of frame {found.frame_index} is empty",
                              hint="the face is cut off by the frame border; use another clip")
        found.crops = np.empty((len(frames), self.size, self.size, 3), np.uint8) if out is None else out
        for i in range(len(frames)):
            found.crops[i] = cv2.resize(np.ascontiguousarray(frames[i][y1:y2, x1:x2]), (self.size, self.size))
        log.info("face crop from frame %d: box %s, quad %s", found.frame_index, found.box.tolist(),
                 np.round(found.quad, 1).tolist())
        return found

    def crop(self, frames: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T, H, W, 3) RGB -> (crops (T, 256, 256, 3), box (clx, cly, crx, cry), quad (lx, ly, rx, ry))."""
        found = self.crop_clip(frames, out)
        return found.crops, found.box, found.quad
