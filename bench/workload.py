"""Full real workload on seeded weights: substituted detections, every network run.

Seeded detectors find no faces, so a seeded run skips GPEN on the references,
GFPGAN in compose, and (seeded ParseNet labels being random) draws its masks
from dlib landmarks instead of running ParseNet. A benchmark of that run times
less work than a run on official weights does. Here:

* every face detector (RetinaFace for GPEN, GFPGAN and the compose; S3FD for
  the face boxes) runs its seeded network, then the seeded-run stand-in answers
  with dlib's real detection, so the restoration networks run on real face
  geometry, as they would with official weights;
* ParseNet runs on every face it would parse with official weights (its seeded
  labels are discarded in favour of the landmark-drawn ones, so blending stays
  meaningful), and its time is counted.

The same substitution is used on the official side of bench_official.py.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def install(pipeline: Any, face_frames: Any = None, crops256: np.ndarray | None = None,
            config: Any = None) -> dict[str, Any]:
    """Make ``pipeline`` (built on seeded weights) do the official-weights workload; returns the substitutes.

    A seeded pipeline's stand-ins (talkingface/models/video_retalking/stand_ins.py)
    answer in place of RetinaFace, S3FD and ParseNet with dlib's real detection,
    without running those networks. Here each stand-in first runs the seeded
    network it replaces on the same image (its cost is paid, as with official
    weights, and as on the official side of bench_official.py), then answers as
    before; where dlib finds no face (the seeded D-Net's noise references), the
    five-point stand-in answers with dlib's detection on real pixels of the same
    size: ``face_frames[0]``, then ``crops256[0]``. Must be called before the
    pipeline runs; ``config`` (the run's) accelerates the added ParseNet and RetinaFaces as the pipeline's own.
    """
    from talkingface.accel import AccelOptions, accelerate
    from talkingface.face import parsing, retinaface
    from talkingface.face.landmark_parsing import LandmarkParser
    from talkingface.models.video_retalking import stand_ins

    options = pipeline.options
    device, seed = options.device, options.seed
    accel = AccelOptions.from_config(config or {}, device)
    parse_net = accelerate(parsing.load_parsenet(weights="seeded", seed=seed, device=device), accel)
    detectors = {flavour: retinaface.load_retinaface(weights="seeded", seed=seed, device=device, flavour=flavour)
                 for flavour in ("gpen", "facexlib")}
    for detector in detectors.values():  # run as the pipeline's own RetinaFace (face_parts.py, CPU only)
        if not str(device).startswith("cuda"):
            accelerate(detector.net, accel)
    calls = {"retinaface": 0, "s3fd": 0, "parsenet": 0, "primed": 0}

    five_points = stand_ins.StandInFivePoints.__call__
    boxes = stand_ins._StandInBoxes.detect
    labels = LandmarkParser.__call__

    # the seeded D-Net paints noise over the reference faces, where dlib finds no face (official weights
    # would): those get dlib's detection of real pixels of the same size (the first frame / first crop)
    from talkingface.face.dlib_detect import DlibFivePointDetector

    dlib_five = DlibFivePointDetector()
    primed: dict[tuple[int, ...], Any] = {}
    for image in ([np.asarray(face_frames[0])] if face_frames is not None else []) + \
            ([np.asarray(crops256[0])] if crops256 is not None else []):
        found_boxes, found_points = dlib_five(np.ascontiguousarray(image))
        if len(found_boxes):
            primed[tuple(image.shape)] = (np.asarray(found_boxes)[:1], np.asarray(found_points)[:1])

    def costed_five_points(self: Any, image: np.ndarray) -> Any:
        calls["retinaface"] += 1
        detectors["facexlib" if "GFPGAN" in self.name else "gpen"].detect(np.ascontiguousarray(image))
        found = five_points(self, image)
        if len(found[0]) == 0 and tuple(np.shape(image)) in primed:
            calls["primed"] += 1
            return primed[tuple(np.shape(image))]
        return found

    def costed_boxes(self: Any, images: np.ndarray) -> Any:
        images = np.asarray(images)
        calls["s3fd"] += 1 if images.ndim == 3 else len(images)
        self.detector.detect(images)
        return boxes(self, images)

    def costed_labels(self: Any, image: np.ndarray) -> Any:
        calls["parsenet"] += 1
        parsing.parse_labels(parse_net, image, device=device)
        return labels(self, image)

    stand_ins.StandInFivePoints.__call__ = costed_five_points
    stand_ins._StandInBoxes.detect = costed_boxes
    LandmarkParser.__call__ = costed_labels
    return {"parse_net": parse_net, "calls": calls}
