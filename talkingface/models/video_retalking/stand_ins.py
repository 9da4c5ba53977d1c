"""Seeded-run stand-ins: the one place where a seeded run replaces what random weights cannot do.

With ``seeded-v1`` weights every network runs, but three outputs are useless:
seeded S3FD and both RetinaFace detectors return hundreds of random "faces"
(418 S3FD and 750 / 484 RetinaFace boxes on a 256 px sample frame, seed 0) and
ParseNet labels pixels at random. A seeded run would then crop random boxes,
restore hundreds of random patches, and blend the new mouth into arbitrary
places. dlib's detector and 68-point predictor are real offline (they ship
with a package), so a seeded run puts them in those places, and only there:

* ``boxes``: S3FD's boxes (the L-Net face boxes and FAN's detector) are dlib's;
  FAN, seeded, then runs on them, so the downstream nets stay the real ones;
* ``five_points``: RetinaFace's boxes and five points (GPEN reference
  enhancement, GFPGAN, the final compose) are dlib's; where dlib finds no face
  (a seeded E-Net paints noise over it) and the caller knows where the face is
  (:attr:`StandInFivePoints.hint`, the L-Net face box), the predictor runs in
  that box;
* ``parsing``: ParseNet's labels are drawn from dlib's 68 points
  (:mod:`talkingface.face.landmark_parsing`).

``seeded_stand_ins`` lists the active ones (default: all three); an empty list
runs every seeded network's own output. Each substitution is logged once when
first used and counted (:attr:`SeededStandIns.counts`). Official weights never
use any of this.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class SeededStandIns:
    """The stand-ins of one pipeline: which are active, their dlib parts, and how often each was used."""

    def __init__(self, active: Iterable[str], predictor_path: str | Path) -> None:
        self.active = tuple(active)
        self.predictor_path = Path(predictor_path)
        self.counts: dict[str, int] = {name: 0 for name in self.active}
        self._dlib_points = None
        log.warning("seeded run: stand-ins for what random weights cannot do: %s",
                    ", ".join(self.active) if self.active else "none (every seeded network's own output)")

    def uses(self, name: str) -> bool:
        return name in self.active

    def _note(self, name: str, what: str) -> None:
        if self.counts[name] == 0:
            log.warning("seeded stand-in %r: %s", name, what)
        self.counts[name] += 1

    @property
    def dlib_points(self):
        """dlib's face detector + 68-point predictor (one instance shared by the stand-ins)."""
        if self._dlib_points is None:
            from talkingface.face.landmarks import DlibLandmarks

            self._dlib_points = DlibLandmarks(self.predictor_path)
        return self._dlib_points

    # -------------------------------------------------------------- wrappers
    def boxes(self, detector: Any) -> Any:
        """``detector`` (an S3FD detector) with dlib boxes where it finds no face."""
        if not self.uses("boxes"):
            return detector
        return _StandInBoxes(detector, self)

    def five_points(self, detector: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                    name: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """dlib's boxes and five points in place of a seeded RetinaFace ``image -> (boxes, points5)``."""
        if not self.uses("five_points"):
            return detector
        return StandInFivePoints(self, name)

    def parser(self, parse: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        """``image -> labels``: ParseNet's, or drawn from dlib landmarks when ``parsing`` is a stand-in."""
        if not self.uses("parsing"):
            return parse
        from talkingface.face.landmark_parsing import LandmarkParser

        stand_in = LandmarkParser(self.dlib_points)

        def labels(image: np.ndarray) -> np.ndarray:
            self._note("parsing", "seeded ParseNet labels pixels at random; labels drawn from dlib's 68 points "
                                  "(real weights) instead")
            return stand_in(image)
        return labels


class _StandInBoxes:
    """dlib's boxes in place of a seeded S3FD detector's (same contract as the detector)."""

    def __init__(self, detector: Any, stand_ins: SeededStandIns) -> None:
        from talkingface.face.dlib_detect import DlibBoxDetector

        self.detector = detector
        self.select = getattr(detector, "select", None)
        self.stand_ins = stand_ins
        self.fallback = DlibBoxDetector()  # the seeded S3FD net stays loaded (stand_ins=[] runs it)

    def detect(self, images: np.ndarray) -> list[np.ndarray]:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        self.stand_ins._note("boxes", "seeded S3FD boxes are random; dlib's boxes (real weights) used instead")
        return [self.fallback.detect(image) for image in images]

    def faces(self, images: Any, batch_size: int = 4) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            out += self.detect(np.asarray(images[start:start + batch_size]))
        return out

    def first_faces(self, images: Any, batch_size: int = 4, anchor=None) -> list:
        from talkingface.face.boxes import frame_size, one_per_frame

        return one_per_frame(self.faces(images, batch_size), self.select, frame_size(images), anchor)


class StandInFivePoints:
    """``image -> (boxes (K,5), points5 (K,5,2))`` from dlib; ``hint`` (x1, y1, x2, y2) where it finds none."""

    def __init__(self, stand_ins: SeededStandIns, name: str) -> None:
        from talkingface.face.dlib_detect import DlibFivePointDetector

        self.stand_ins = stand_ins
        self.name = name
        self.detector = DlibFivePointDetector(stand_ins.predictor_path)
        self.hint: tuple[int, int, int, int] | None = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from talkingface.face.dlib_detect import dlib_rect, five_points, predict_points

        self.stand_ins._note("five_points", f"seeded {self.name} boxes are random; dlib's boxes and five points "
                                            "(real weights) used instead")
        boxes, points = self.detector(image)
        if len(boxes) or self.hint is None:
            return boxes, points
        x1, y1, x2, y2 = (int(v) for v in self.hint)
        lm = predict_points(self.detector.predictor, np.ascontiguousarray(image), dlib_rect((x1, y1, x2, y2)))
        return np.array([[x1, y1, x2, y2, 1.0]], np.float32), five_points(lm)[None]
