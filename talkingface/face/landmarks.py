"""68-point landmarks of the cropped faces: FAN (the reference's choice) or dlib (offline real weights).

Both extractors are callables ``images (N, h, w, 3) RGB uint8 -> (landmarks
(N, 68, 2) float32 x/y pixels, missing frame indices)``. A frame without a
face takes the landmarks of the previous frame with one (the reference's
``KeypointExtractor`` rule), or of the next one when no earlier frame has a
face. When no frame has a face every entry is -1, the reference's "no face"
marker that the 3DMM stage replaces with the standard landmarks.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from talkingface.face.dlib_detect import dlib_detect, dlib_rect, load_shape_predictor, predict_points

log = logging.getLogger(__name__)

NUM_POINTS = 68
GAP_RULES = ("previous", "nearest")


def fill_missing(points: Sequence[np.ndarray | None], gaps: str = "previous") -> tuple[np.ndarray, list[int]]:
    """Stack per-frame (68, 2) landmarks; a frame without a face takes the previous frame's.

    ``gaps="previous"`` is the official ``KeypointExtractor``: frames before the
    first detection keep the -1 "no face" marker (the 3DMM stage then places the
    mean face). ``gaps="nearest"``: they take the first detection instead.
    All frames missing -> -1 everywhere.
    """
    if gaps not in GAP_RULES:
        raise ValueError(f"gaps must be one of {GAP_RULES}, got {gaps!r}")
    missing = [i for i, p in enumerate(points) if p is None]
    out = np.full((len(points), NUM_POINTS, 2), -1.0, np.float32)
    found = [i for i, p in enumerate(points) if p is not None]
    if not found:
        return out, missing
    for i, p in enumerate(points):
        if p is not None:
            out[i] = p
    if gaps == "previous":
        for i in range(found[0] + 1, len(points)):
            if points[i] is None:
                out[i] = out[i - 1]
        return out, missing
    last = found[0]
    for i in range(len(points)):
        if points[i] is not None:
            last = i
        else:
            out[i] = out[last]  # `last` is the first detection for a leading gap
    return out, missing


def _report(kind: str, missing: list[int], total: int) -> None:
    from talkingface.face.select import ranges

    if missing:
        log.warning("%s landmarks: no face in %d of %d image(s) (%s); neighbours' landmarks reused%s", kind,
                    len(missing), total, ranges(missing), " (none found: -1 markers)" if len(missing) == total else "")


class DlibLandmarks:
    """dlib HOG face + 68-point shape predictor, one face per image.

    Detection runs without upsampling first and with one 2x upsampling when that
    finds nothing (small faces). ``select`` (:mod:`talkingface.face.select`)
    picks among several faces; None is the best-scoring one. The pipeline runs
    this on clip crops, where the face the crop was made for is the ``center``
    one.
    """

    def __init__(self, predictor_path: str | Path | None = None, *, root: str | Path | None = None,
                 select=None, gaps: str = "previous") -> None:
        import dlib

        from talkingface.weights.manifest import checkpoint_path
        from talkingface.face.select import parse_rule

        path = Path(predictor_path) if predictor_path is not None else checkpoint_path("dlib_landmarks", root)
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = load_shape_predictor(path)
        self.select = parse_rule(select)
        self.gaps = gaps

    def points(self, image: np.ndarray) -> np.ndarray | None:
        from talkingface.face.select import pick

        image = np.ascontiguousarray(image)
        dets = dlib_detect(self.detector, image, 0, 1)
        chosen = pick(dets, self.select, image.shape[:2])
        if chosen is None:
            return None
        return predict_points(self.predictor, image, dlib_rect(dets[chosen]))

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, list[int]]:
        lm, missing = fill_missing([self.points(img) for img in images], self.gaps)
        _report("dlib", missing, len(images))
        return lm, missing


class FANLandmarks:
    """face-alignment 1.3.4's ``get_landmarks_from_image(...)[0]``: S3FD (BGR, float64 decoding) + FAN.

    The first (best-scoring) S3FD face of each image is cropped, FAN runs on the
    crops in batches of ``batch_size``, landmarks are integer pixels as there.
    ``select`` picks another face among several (see :class:`DlibLandmarks`).
    """

    def __init__(self, detector, fan, device: str | torch.device = "cpu", batch_size: int = 16,
                 select=None, gaps: str = "previous") -> None:
        from talkingface.face.select import parse_rule

        self.detector = detector
        self.fan = fan.eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.select = parse_rule(select)
        self.gaps = gaps

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, list[int]]:
        from talkingface.face.fan import center_scale, crop_face, heatmap_peaks, to_image

        from talkingface.face.select import pick

        jobs = []  # (frame index, centre, scale, crop)
        for i, image in enumerate(images):
            dets = self.detector.detect(image[None])[0]
            chosen = pick(dets, self.select, image.shape[:2])
            if chosen is not None:
                centre, scale = center_scale(dets[chosen])
                jobs.append((i, centre, scale, crop_face(image, centre, scale)))
        points: list[np.ndarray | None] = [None] * len(images)
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            x = torch.from_numpy(np.stack([c[3] for c in chunk])).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div(255.0)
            peaks = heatmap_peaks(self.fan(x).float().cpu().numpy())
            for (i, centre, scale, _), p in zip(chunk, peaks):
                points[i] = to_image(p, centre, scale)
        lm, missing = fill_missing(points, self.gaps)
        _report("FAN", missing, len(images))
        return lm, missing


def make_landmarks(kind: str = "fan", *, weights: str = "official", seed: int = 0,
                   device: str | torch.device = "cpu", root: str | Path | None = None, select=None):
    """The landmark extractor named by the ``landmarks`` option: ``"fan"`` or ``"dlib"``.

    ``select``: which face when an image shows several (None: the best-scoring).
    """
    from talkingface.errors import ConfigError

    if kind == "dlib":
        return DlibLandmarks(root=root, select=select)
    if kind == "fan":
        from talkingface.face.fan import load_fan
        from talkingface.face import load_net
        from talkingface.face.s3fd import S3FD, S3FDDetector

        s3fd_net = load_net(S3FD(), name="s3fd", weights=weights, seed=seed, device=device, root=root)
        detector = S3FDDetector(s3fd_net, device, channel_order="bgr", decode_dtype=torch.float64)
        return FANLandmarks(detector, load_fan(weights=weights, seed=seed, device=device, root=root), device,
                            select=select)
    raise ConfigError(f"unknown landmarks {kind!r}", hint="use landmarks: fan (official) or landmarks: dlib")
