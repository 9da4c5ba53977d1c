"""A stand-in for ``dlib`` on the GPU bench machine, replaying real dlib results recorded on the dev machine.

The GPU machine has no dlib wheel and the 68-point model (100 MB) does not fit
the transfer budget; dlib is CPU-only work either way. ``record.py`` runs the
real dlib on the bench clip and stores: the face rectangle per image size seen
(720p frames, 256 crops), a face rectangle as a fraction of the image for other
sizes, and the mean 68-point shape relative to its rectangle. This module
answers detector / predictor calls from that recording, so every GPU stage
gets the face geometry real dlib gives. Never on sys.path outside bench_gpu.py
(which inserts it only when ``import dlib`` fails) and its dlib time is not
counted there: bench_gpu.py reports the recorded CPU cost of real dlib beside.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

_REC = json.loads(Path(os.environ.get("DLIB_REPLAY", Path(__file__).with_name("recording.json"))).read_text())


class rectangle:  # noqa: N801 - dlib's name
    def __init__(self, left: int, top: int, right: int, bottom: int) -> None:
        self._l, self._t, self._r, self._b = int(left), int(top), int(right), int(bottom)

    def left(self) -> int:
        return self._l

    def top(self) -> int:
        return self._t

    def right(self) -> int:
        return self._r

    def bottom(self) -> int:
        return self._b

    def width(self) -> int:
        return self._r - self._l + 1

    def height(self) -> int:
        return self._b - self._t + 1


class point:  # noqa: N801
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = int(x), int(y)


class full_object_detection:  # noqa: N801
    def __init__(self, pts: list[point]) -> None:
        self._pts = pts

    def parts(self) -> list[point]:
        return self._pts


def _rect_for(shape: tuple[int, ...]) -> rectangle:
    key = f"{shape[0]}x{shape[1]}"
    if key in _REC["rects"]:
        return rectangle(*_REC["rects"][key])
    fx1, fy1, fx2, fy2 = _REC["relative_rect"]
    h, w = shape[:2]
    return rectangle(round(fx1 * w), round(fy1 * h), round(fx2 * w), round(fy2 * h))


class _Detector:
    def __call__(self, image, upsample: int = 0) -> list[rectangle]:
        return [_rect_for(image.shape)]

    def run(self, image, upsample: int = 0, threshold: float = 0.0):
        return [_rect_for(image.shape)], [1.0], [0]


def get_frontal_face_detector() -> _Detector:
    return _Detector()


class shape_predictor:  # noqa: N801
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, image, rect: rectangle) -> full_object_detection:
        w, h = rect.right() - rect.left(), rect.bottom() - rect.top()
        return full_object_detection([point(round(rect.left() + u * w), round(rect.top() + v * h))
                                      for u, v in _REC["shape"]])
