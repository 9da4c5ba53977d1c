"""Full real workload on seeded weights: substituted detections, every network run.

Seeded detectors find no faces, so a seeded run skips GPEN on the references,
GFPGAN in compose, and (seeded ParseNet labels being random) draws its masks
from dlib landmarks instead of running ParseNet. A benchmark of that run times
less work than a run on official weights does. Here:

* every 5-point face detection (GPEN FaceEnhancer, GFPGAN restorer) answers
  with a real dlib detection made on *real pixels* of the same size: the first
  input frame for full frames, the first 256 px crop for the D-Net faces
  (:class:`PrimedDetector`); the seeded D-Net/E-Net paint noise, which no
  detector finds a face in, but the restoration networks then run on the same
  face geometry they would with official weights;
* ParseNet runs on every face it would parse with official weights (its seeded
  labels are discarded in favour of the landmark-drawn ones, so blending stays
  meaningful), and its time is counted.

The same substitution is used on the official side of bench_official.py.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class PrimedDetector:
    """``image -> (boxes, landmarks5)``: the real detection primed for an image of that size."""

    def __init__(self, real: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
        self.real = real
        self.by_shape: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self.calls = 0

    def prime(self, image: np.ndarray) -> None:
        boxes, points = self.real(np.ascontiguousarray(image))
        if len(boxes) == 0:
            raise RuntimeError(f"PrimedDetector: no real face found in the {image.shape} priming image")
        self.by_shape[tuple(image.shape)] = (np.asarray(boxes)[:1], np.asarray(points)[:1])

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        self.real(image)  # the detection cost is paid, as with official weights
        hit = self.by_shape.get(tuple(image.shape))
        if hit is None:
            return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
        return hit


def install(pipeline: Any, face_frames: Any, crops256: np.ndarray | None = None) -> dict[str, Any]:
    """Make ``pipeline`` (built on seeded weights) do the official-weights workload; returns the substitutes.

    Must be called before the pipeline runs; ``face_frames`` are the input frames
    (frame 0 primes full-frame detections), ``crops256`` the Croper output (its
    first crop primes the D-Net-face detections).
    """
    from talkingface.face import parsing
    from talkingface.face.dlib_detect import DlibFivePointDetector

    detector = DlibFivePointDetector()
    primed = PrimedDetector(detector)
    primed.prime(np.asarray(face_frames[0]))
    if crops256 is not None:
        primed.prime(np.asarray(crops256[0]))
    parts = pipeline.parts
    found = 0
    for cell in _closure_objects(parts.enhance_face) + _closure_objects(parts.restore):
        if hasattr(cell, "detector"):
            cell.detector = primed
            found += 1
    if found < 2:
        raise RuntimeError("workload.install: GPEN/GFPGAN restorers not found in the pipeline parts "
                           "(enhancer: none?)")
    enhancers = [c for c in _closure_objects(parts.enhance_face) if hasattr(c, "parse_net")]
    # the pipeline's own ParseNet (accelerated like every loaded network), as official weights would use it
    parse_net = enhancers[0].parse_net if enhancers else parsing.load_parsenet(
        weights="seeded", seed=pipeline.options.seed, device=pipeline.options.device)
    drawn = parts.parse_labels

    def parse_labels(image: np.ndarray) -> np.ndarray:
        parsing.parse_labels(parse_net, image, device=pipeline.options.device)  # the official-weights cost
        return drawn(image)

    parts.parse_labels = parse_labels
    return {"detector": primed, "parse_net": parse_net}


def _closure_objects(fn: Any) -> list[Any]:
    cells = getattr(fn, "__closure__", None) or ()
    out = []
    for cell in cells:
        try:
            out.append(cell.cell_contents)
        except ValueError:
            continue
    return out
