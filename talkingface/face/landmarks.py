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

log = logging.getLogger(__name__)

NUM_POINTS = 68


def fill_missing(points: Sequence[np.ndarray | None]) -> tuple[np.ndarray, list[int]]:
    """Stack per-frame (68, 2) landmarks; gaps take the previous (else next) frame's; all-missing -> -1."""
    missing = [i for i, p in enumerate(points) if p is None]
    out = np.full((len(points), NUM_POINTS, 2), -1.0, np.float32)
    found = [i for i, p in enumerate(points) if p is not None]
    if not found:
        return out, missing
    for i, p in enumerate(points):
        if p is not None:
            out[i] = p
    last = found[0]
    for i in range(len(points)):
        if points[i] is not None:
            last = i
        else:
            out[i] = out[last]  # `last` is the first detection for a leading gap
    return out, missing


def _report(kind: str, missing: list[int], total: int) -> None:
    if missing:
        log.warning("%s landmarks: no face in %d of %d image(s); neighbours' landmarks reused%s", kind,
                    len(missing), total, " (none found: -1 markers)" if len(missing) == total else "")


class DlibLandmarks:
    """dlib HOG face + 68-point shape predictor (the first detection of each image).

    Detection runs without upsampling first and with one 2x upsampling when that
    finds nothing (small faces).
    """

    def __init__(self, predictor_path: str | Path | None = None, *, root: str | Path | None = None) -> None:
        import dlib

        from talkingface.checkpoints import checkpoint_path

        path = Path(predictor_path) if predictor_path is not None else checkpoint_path("dlib_landmarks", root)
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = _shape_predictor(path)

    def points(self, image: np.ndarray) -> np.ndarray | None:
        image = np.ascontiguousarray(image)
        dets = self.detector(image, 0)
        if len(dets) == 0:
            dets = self.detector(image, 1)
        if len(dets) == 0:
            return None
        shape = self.predictor(image, dets[0])
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, list[int]]:
        lm, missing = fill_missing([self.points(img) for img in images])
        _report("dlib", missing, len(images))
        return lm, missing


def _shape_predictor(path: Path):
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


class FANLandmarks:
    """face-alignment 1.3.4's ``get_landmarks_from_image(...)[0]``: S3FD (BGR, float64 decoding) + FAN.

    The first (best-scoring) S3FD face of each image is cropped, FAN runs on the
    crops in batches of ``batch_size``, landmarks are integer pixels as there.
    """

    def __init__(self, detector, fan, device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        self.detector = detector
        self.fan = fan.eval()
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, list[int]]:
        from talkingface.face.fan import center_scale, crop_face, heatmap_peaks, to_image

        jobs = []  # (frame index, centre, scale, crop)
        for i, image in enumerate(images):
            dets = self.detector.detect(image[None])[0]
            if len(dets):
                centre, scale = center_scale(dets[0])
                jobs.append((i, centre, scale, crop_face(image, centre, scale)))
        points: list[np.ndarray | None] = [None] * len(images)
        for start in range(0, len(jobs), self.batch_size):
            chunk = jobs[start:start + self.batch_size]
            x = torch.from_numpy(np.stack([c[3] for c in chunk])).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div(255.0)
            peaks = heatmap_peaks(self.fan(x).float().cpu().numpy())
            for (i, centre, scale, _), p in zip(chunk, peaks):
                points[i] = to_image(p, centre, scale)
        lm, missing = fill_missing(points)
        _report("FAN", missing, len(images))
        return lm, missing


def make_landmarks(kind: str = "dlib", *, weights: str = "official", seed: int = 0,
                   device: str | torch.device = "cpu", root: str | Path | None = None):
    """The landmark extractor named by the ``landmarks`` option: ``"fan"`` or ``"dlib"``."""
    from talkingface.errors import ConfigError

    if kind == "dlib":
        return DlibLandmarks(root=root)
    if kind == "fan":
        from talkingface.face.fan import load_fan
        from talkingface.face.s3fd import S3FDDetector, S3FD
        from talkingface.face import load_net

        s3fd_net = load_net(S3FD(), name="s3fd", weights=weights, seed=seed, device=device, root=root)
        detector = S3FDDetector(s3fd_net, device, channel_order="bgr", decode_dtype=torch.float64)
        return FANLandmarks(detector, load_fan(weights=weights, seed=seed, device=device, root=root), device)
    raise ConfigError(f"unknown landmarks {kind!r}", hint="use landmarks: fan (official) or landmarks: dlib")
