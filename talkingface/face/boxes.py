"""The L-Net face boxes of a clip: one box per frame, gaps filled, padded, smoothed.

Detector-independent: any detector with ``first_faces(frames, batch_size, anchor)``
(:class:`~talkingface.face.s3fd.S3FDDetector`,
:class:`~talkingface.face.dlib_detect.DlibBoxDetector`) feeds :func:`face_boxes`;
:func:`one_per_frame` is the rule those detectors share for reducing each frame's
detections to one box.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from talkingface.errors import NoFaceError

log = logging.getLogger(__name__)

#: int ``x1, y1, x2, y2`` in frame pixels
Box = tuple[int, int, int, int]


def frame_size(images) -> tuple[int, int]:
    """(height, width) of a frame sequence without materialising it (arrays and lazy clips)."""
    shape = getattr(images, "shape", None)
    return tuple(shape[1:3]) if shape is not None else tuple(np.asarray(images[0]).shape[:2])


def one_per_frame(dets: list[np.ndarray], select, size: tuple[int, int], anchor) -> list[Box | None]:
    """Per frame (K, 5) detections -> one int box per frame (clipped at 0) or None.

    Without ``select`` and ``anchor``: each frame's best-scoring face (the reference);
    otherwise one person for the whole clip (:func:`talkingface.face.select.choose_track`).
    """
    from talkingface.face.select import choose_track

    if select is None and anchor is None:
        return [None if len(d) == 0 else tuple(int(v) for v in np.clip(d[int(np.argmax(d[:, 4])), :4], 0, None))
                for d in dets]  # type: ignore[misc]
    clipped = [np.concatenate([np.clip(d[:, :4], 0, None), d[:, 4:5]], 1) if len(d) else np.zeros((0, 5))
               for d in dets]
    return choose_track(clipped, select, size, anchor)


def smooth_boxes(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """The reference's ``get_smoothened_boxes``: in place, forward window, int truncation.

    Box i becomes the mean of boxes i..i+window-1; near the end the window is
    the last ``window`` boxes, which by then are already smoothed (the reference
    updates in place). A clip shorter than the window is averaged as a whole
    (the reference's negative slice would average only its last few boxes).
    """
    out = np.array(boxes, dtype=np.int64, copy=True)
    n = len(out)
    for i in range(n):
        span = out[i:i + window] if i + window <= n else out[max(0, n - window):]
        out[i] = np.mean(span, axis=0)
    return out


def fill_missing_boxes(raw: Sequence[Box | None]) -> tuple[np.ndarray, list[int]]:
    """(T, 4) boxes with gaps interpolated linearly between detections and held at the ends.

    Returns the filled boxes (rounded to int) and the indices of frames that had
    no detection. Raises :class:`NoFaceError` when no frame has one.
    """
    missing = [i for i, box in enumerate(raw) if box is None]
    found = [i for i, box in enumerate(raw) if box is not None]
    if not found:
        raise NoFaceError(f"no face detected in any of the {len(raw)} frame(s)",
                          hint="use a video with one clearly visible frontal face, or crop it to the face "
                               "with --crop")
    known = np.array([raw[i] for i in found], np.float64)
    t = np.arange(len(raw))
    filled = np.stack([np.interp(t, found, known[:, c]) for c in range(4)], 1)
    return np.rint(filled).astype(np.int64), missing


def face_boxes(frames: np.ndarray, detector, pads: Sequence[int] = (0, 20, 0, 0), nosmooth: bool = False,
               batch_size: int = 4, anchor: Sequence[float] | None = None) -> tuple[np.ndarray, list[int]]:
    """The L-Net face box of every frame: (T, 4) int ``y1, y2, x1, x2`` and the frames without a face.

    As the reference ``face_detect(..., jaw_correction=True)``: best face per frame,
    ``pads`` = (top, bottom, left, right) added and clipped to the frame, then a
    5-frame smoothing unless ``nosmooth``. Where the reference stops at the first
    frame without a face, those frames take boxes interpolated from their
    neighbours (logged); only a clip with no face at all raises
    :class:`NoFaceError`. ``detector`` has ``first_faces(frames, batch_size)``
    (:class:`S3FDDetector`, :class:`DlibBoxDetector`). Several faces: the
    detector's ``select`` rule, or with ``anchor`` (x1, y1, x2, y2: the clip crop
    box) the face inside it, one person for the whole clip
    (:mod:`talkingface.face.select`).
    """
    if anchor is None:
        raw = detector.first_faces(frames, batch_size=batch_size)
    else:
        raw = detector.first_faces(frames, batch_size=batch_size, anchor=anchor)
    try:
        boxes, missing = fill_missing_boxes(raw)
    except NoFaceError as exc:
        raise NoFaceError(f"face boxes: {exc.message}", hint=exc.hint) from None
    if missing:
        log.warning("face boxes: no face in %d of %d frame(s) (%s); boxes interpolated from neighbours",
                    len(missing), len(frames), _ranges(missing))
    pad_top, pad_bottom, pad_left, pad_right = (int(p) for p in pads)
    height, width = frames.shape[1:3]
    x1, y1, x2, y2 = boxes.T
    out = np.stack([np.maximum(0, y1 - pad_top), np.minimum(height, y2 + pad_bottom),
                    np.maximum(0, x1 - pad_left), np.minimum(width, x2 + pad_right)], 1)
    if not nosmooth:
        out = smooth_boxes(out)
    return out.astype(np.int64), missing


def _ranges(indices: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` for log lines."""
    from talkingface.face.select import ranges

    return ranges(indices)
