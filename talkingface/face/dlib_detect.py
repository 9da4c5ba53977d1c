"""dlib's HOG face detector and 68-point predictor, wrapped for the places that use them.

dlib's weights ship with a package, so these work offline with real detections:
the clip crop (:mod:`talkingface.face.croper`), dlib landmarks, the L-Net boxes
without S3FD (:class:`DlibBoxDetector`), the LSE face tracks
(``lse_detector: dlib``) and the seeded-run stand-ins
(:class:`DlibFivePointDetector`). One detection rule (:func:`dlib_detect`) serves them all.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from talkingface.face.boxes import Box, frame_size, one_per_frame

#: dlib retries with more upsampling only while the upsampled image stays below this many pixels
MAX_UPSAMPLED_PIXELS = 2048 * 2048


def dlib_detect(detector, image: np.ndarray, upsample: int = 0, max_upsample: int | None = None) -> np.ndarray:
    """dlib HOG faces of one RGB image: (K, 5) ``x1, y1, x2, y2, score`` (exclusive right/bottom), best first.

    Tries ``upsample`` (times 2x) first; when that finds nothing, one more 2x at a
    time up to ``max_upsample`` (small faces: the HOG window is 80 px, so a
    40 px face needs one upsampling, a 20 px face two), skipping levels whose
    upsampled image would exceed :data:`MAX_UPSAMPLED_PIXELS`.
    """
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    top = upsample if max_upsample is None else max(upsample, max_upsample)
    for level in range(upsample, top + 1):
        if level > upsample and height * width * 4 ** level > MAX_UPSAMPLED_PIXELS:
            break
        rects, scores, _ = detector.run(image, level, 0.0)
        if len(rects):
            return np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1, score]
                             for r, score in zip(rects, scores)], np.float64)
    return np.zeros((0, 5), np.float64)


def dlib_rect(box: np.ndarray):
    """``x1, y1, x2, y2`` (exclusive) -> the ``dlib.rectangle`` it came from."""
    import dlib

    x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
    return dlib.rectangle(x1, y1, x2 - 1, y2 - 1)


def predict_points(predictor, image: np.ndarray, rect, dtype=np.float32) -> np.ndarray:
    """dlib's 68 (x, y) points of the face in ``rect`` (a ``dlib.rectangle``) as an array."""
    shape = predictor(image, rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype)


def load_shape_predictor(path: Path):
    """dlib's 68-point predictor from ``path``; a missing or foreign file is a :class:`CheckpointError`."""
    import dlib

    from talkingface.errors import CheckpointError

    if not path.is_file():
        raise CheckpointError(f"dlib shape predictor not found: {path}",
                              hint="run `python -m talkingface checkpoints download dlib_landmarks` "
                                   "(or pip install face-recognition-models)")
    try:
        return dlib.shape_predictor(str(path))
    except RuntimeError as exc:
        raise CheckpointError(f"{path} is not a dlib shape predictor: {exc}",
                              hint="re-download shape_predictor_68_face_landmarks.dat") from None


class DlibBoxDetector:
    """dlib HOG boxes with the :meth:`~talkingface.face.s3fd.S3FDDetector.first_faces` contract.

    For runs without the S3FD file (dlib's weights ship with a package). dlib's
    boxes are tighter than S3FD's (brow to lip-chin); the L-Net crop then sees a
    closer face. Frames are shrunk so the longer side is at most ``max_side``;
    a frame where nothing is found at ``upsample`` is retried with 2x
    upsampling up to ``max_upsample`` (small faces; see :func:`dlib_detect`).
    ``clip`` clips the boxes to the frame (the LSE face tracks take them
    unclipped, as their reference). ``select`` is the ``face_select`` rule
    (None: the best-scoring face of each frame). Called on one frame it is an
    LSE crop detector (``frame -> (K, 5)``).
    """

    def __init__(self, max_side: int = 640, upsample: int = 0, max_upsample: int = 2, select=None,
                 clip: bool = True) -> None:
        import dlib

        from talkingface.face.select import parse_rule

        self._detector = dlib.get_frontal_face_detector()
        self.max_side = max_side
        self.upsample = upsample
        self.max_upsample = max_upsample
        self.clip = clip
        self.select = parse_rule(select)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(K, 5) x1, y1, x2, y2, score in frame pixels (clipped to the frame when ``clip``)."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                      interpolation=cv2.INTER_AREA)
        dets = dlib_detect(self._detector, small, self.upsample, self.max_upsample)
        dets[:, :4] /= scale
        if self.clip:
            dets[:, :4] = np.clip(dets[:, :4], 0, [w, h, w, h])
        return dets

    __call__ = detect

    def best_box(self, image: np.ndarray) -> Box | None:
        dets = self.detect(image)
        if not len(dets):
            return None
        x1, y1, x2, y2 = dets[int(np.argmax(dets[:, 4])), :4]
        return int(x1), int(y1), int(x2), int(y2)

    def faces(self, images: np.ndarray, batch_size: int = 4) -> list[np.ndarray]:
        return [self.detect(image) for image in images]

    def first_faces(self, images: np.ndarray, batch_size: int = 4, anchor=None) -> list[Box | None]:
        if self.select is None and anchor is None:
            return [self.best_box(image) for image in images]
        return one_per_frame(self.faces(images), self.select, frame_size(images), anchor)


def five_points(lm68: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip, mouth corners from 68 points (the usual 68 -> 5 reduction)."""
    lm68 = np.asarray(lm68, np.float32)
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]])


class DlibFivePointDetector:
    """``image -> (boxes (K,5), landmarks5 (K,5,2))`` from dlib, largest face first.

    The seeded-run stand-in for RetinaFace (dlib's weights ship with a package,
    so this works offline with real detections).
    """

    def __init__(self, predictor_path: str | Path | None = None) -> None:
        import dlib

        from talkingface.weights.manifest import checkpoint_path

        self.detector = dlib.get_frontal_face_detector()
        path = predictor_path if predictor_path is not None else checkpoint_path("dlib_landmarks")
        self.predictor = load_shape_predictor(Path(path))

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects = sorted(self.detector(image, 0), key=lambda r: -r.width() * r.height())
        boxes, points = [], []
        for rect in rects:
            lm = predict_points(self.predictor, image, rect)
            boxes.append([rect.left(), rect.top(), rect.right(), rect.bottom(), 1.0])
            points.append(five_points(lm))
        if not boxes:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        return np.asarray(boxes, np.float32), np.stack(points)
