"""Face-track crops for SyncNet, as syncnet_python's ``run_pipeline.py`` makes them.

``lse_crop: frame`` (Wav2Lip's ``calculate_scores_LRS.py``): every frame is
resized to 224x224 as a whole — right for LRS2, whose clips are already face
crops.

``lse_crop: face`` (Wav2Lip's ``calculate_scores_real_videos``): faces are
detected on every frame, split at scene cuts, linked into tracks (IoU > 0.5,
up to 25 missed frames), interpolated, kept when longer than ``min_track``
frames and larger than ``min_face_size`` px; the box centre and size are
median-filtered (kernel 13) and a square of 1.4x the box (crop_scale 0.4) is
cut with 110-grey padding and resized to 224. Where the reference drops a
track silently, :class:`TrackReport` says why.

A detector is any callable ``frame RGB uint8 (H, W, 3) -> (K, 5) array of
x1, y1, x2, y2, score`` in frame pixels.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import signal
from scipy.interpolate import interp1d

log = logging.getLogger(__name__)

Detector = Callable[[np.ndarray], np.ndarray]
CROP_SIZE = 224
PAD_VALUE = 110


@dataclass(frozen=True)
class TrackConfig:
    """Constants of run_pipeline.py (its command-line defaults)."""

    min_track: int = 100  # a track needs MORE than this many detections
    min_face_size: float = 100.0  # mean box side (the larger of width/height), px
    num_failed_det: int = 25  # missed frames bridged inside a track
    iou_threshold: float = 0.5
    crop_scale: float = 0.4
    smooth_kernel: int = 13
    scene_threshold: float | None = 30.0  # content-change cut threshold; None: one scene
    min_scene_len: int = 15


@dataclass
class FaceTrack:
    frames: np.ndarray  # (n,) consecutive frame indices
    boxes: np.ndarray  # (n, 4) interpolated x1, y1, x2, y2
    centre_x: np.ndarray = field(default=None)  # median-filtered crop geometry
    centre_y: np.ndarray = field(default=None)
    half_size: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        if self.centre_x is None:
            self.half_size, self.centre_x, self.centre_y = track_geometry(self.boxes)

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:  # exclusive
        return int(self.frames[-1]) + 1

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class TrackReport:
    """Tracks kept, and for the rest why they were dropped (never silent)."""

    tracks: list[FaceTrack]
    num_frames: int
    frames_with_faces: int
    scenes: list[tuple[int, int]]
    dropped: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        """A per-clip reason when nothing usable was found."""
        if self.tracks:
            return None
        if self.frames_with_faces == 0:
            return f"no face detected in any of {self.num_frames} frames"
        detail = "; ".join(self.dropped[:3]) if self.dropped else "no track could be formed"
        return f"no usable face track ({detail})"


# ----------------------------------------------------------------------------- frame mode

def frame_crops(frames_rgb: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Whole frames resized to ``size`` (bilinear, cv2 as the reference), RGB uint8."""
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames_rgb])


# ----------------------------------------------------------------------------- detection

def detect_all(frames_rgb: np.ndarray, detector: Detector) -> list[np.ndarray]:
    """Detections on every frame: a list of (K, 5) arrays."""
    out = []
    for frame in frames_rgb:
        boxes = np.asarray(detector(frame), dtype=np.float64).reshape(-1, 5)
        out.append(boxes)
    return out


#: PySceneDetect 0.5.1's automatic subsampling (VideoManager.set_downscale_factor()): width -> step
_DOWNSCALE = ((3200, 12), (2100, 8), (1700, 6), (1200, 5), (900, 4), (600, 3), (400, 2))


def scene_cuts(frames_rgb: Iterable[np.ndarray], threshold: float | None = 30.0,
               min_scene_len: int = 15) -> list[tuple[int, int]]:
    """Shots as ``[start, end)`` frame ranges, by the rule of PySceneDetect 0.5.1's ``ContentDetector``.

    (The version syncnet_python pins.) Frames are subsampled by the automatic
    downscale factor of its video manager; a cut is declared at frame ``i`` when
    the mean absolute change of H, S and V (averaged over the three) reaches
    ``threshold`` and the previous cut is at least ``min_scene_len`` frames back
    (the first cut has no such limit). ``frames_rgb`` may be any iterable (frames
    decoded on the fly).
    """
    if threshold is None:
        return [(0, len(frames_rgb))]
    cuts: list[int] = []
    previous = None
    step = 1
    n = 0
    for index, frame in enumerate(frames_rgb):
        n = index + 1
        if index == 0:
            width = frame.shape[1]
            step = next((factor for min_width, factor in _DOWNSCALE if width >= min_width), 1)
        hsv = cv2.cvtColor(np.ascontiguousarray(frame[::step, ::step]), cv2.COLOR_RGB2HSV).astype(np.int32)
        if previous is not None:
            pixels = hsv.shape[0] * hsv.shape[1]
            delta = sum(float(np.sum(np.abs(hsv[..., c] - previous[..., c]))) / pixels for c in range(3)) / 3.0
            if delta >= threshold and (not cuts or index - cuts[-1] >= min_scene_len):
                cuts.append(index)
        previous = hsv
    bounds = [0] + cuts + [n]
    return [(a, b) for a, b in zip(bounds, bounds[1:])]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def link_tracks(detections: Sequence[np.ndarray], start: int, end: int,
                config: TrackConfig) -> tuple[list[FaceTrack], list[str]]:
    """Greedy track linking inside one shot, with the reference's visiting order.

    Each pass walks the frames in order and grows one track: a face joins when
    it is at most ``num_failed_det`` frames after the track's last face and
    overlaps it by IoU > threshold. Faces taken are removed (the reference
    removes them from the list it is iterating over, which skips the face
    after each removal within a frame; kept here so that tracks agree).
    """
    pool = [[(f, np.asarray(box[:4], dtype=np.float64)) for box in detections[f]] for f in range(start, end)]
    tracks: list[FaceTrack] = []
    dropped: list[str] = []
    while True:
        track: list[tuple[int, np.ndarray]] = []
        for faces in pool:
            index = 0
            while index < len(faces):
                frame, box = faces[index]
                if not track:
                    track.append((frame, box))
                    faces.pop(index)
                elif frame - track[-1][0] <= config.num_failed_det:
                    if _iou(box, track[-1][1]) > config.iou_threshold:
                        track.append((frame, box))
                        faces.pop(index)
                else:
                    break
                index += 1
        if not track:
            break
        if len(track) <= config.min_track:
            dropped.append(f"track of {len(track)} detections in frames {track[0][0]}-{track[-1][0]} "
                           f"is not longer than min_track={config.min_track}")
            continue
        frames = np.array([f for f, _ in track])
        boxes = np.stack([b for _, b in track])
        dense = np.arange(frames[0], frames[-1] + 1)
        if len(frames) > 1:
            boxes_i = np.stack([interp1d(frames, boxes[:, j])(dense) for j in range(4)], axis=1)
        else:
            boxes_i = boxes.copy()
        size = max(np.mean(boxes_i[:, 2] - boxes_i[:, 0]), np.mean(boxes_i[:, 3] - boxes_i[:, 1]))
        if size > config.min_face_size:
            tracks.append(FaceTrack(dense, boxes_i))
        else:
            dropped.append(f"face of mean size {size:.0f} px in frames {frames[0]}-{frames[-1]} "
                           f"is not larger than min_face_size={config.min_face_size:g}")
    return tracks, dropped


def face_tracks(frames_rgb: np.ndarray | None, detector: Detector | None = None,
                config: TrackConfig = TrackConfig(), detections: Sequence[np.ndarray] | None = None,
                scenes: list[tuple[int, int]] | None = None) -> TrackReport:
    """Shots -> tracks for a whole clip (detections and shots are computed unless given)."""
    if detections is None:
        if detector is None:
            raise ValueError("face_tracks needs a detector or precomputed detections")
        detections = detect_all(frames_rgb, detector)
    n = len(detections)
    if scenes is None:
        scenes = scene_cuts(frames_rgb, config.scene_threshold, config.min_scene_len) if frames_rgb is not None \
            else [(0, n)]
    tracks: list[FaceTrack] = []
    dropped: list[str] = []
    for start, end in scenes:
        if end - start < config.min_track:
            dropped.append(f"shot {start}-{end - 1} has {end - start} frames, fewer than min_track={config.min_track}")
            continue
        found, why = link_tracks(detections, start, end, config)
        tracks += found
        dropped += why
    with_faces = sum(1 for d in detections if len(d))
    return TrackReport(tracks, n, with_faces, scenes, dropped)


# ----------------------------------------------------------------------------- crop

def track_geometry(boxes: np.ndarray, kernel: int = 13) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half size, centre x, centre y, each median-filtered (zero-padded ends, as scipy's medfilt).

    run_pipeline.crop_video's rule; not the L-Net's :func:`talkingface.face.boxes.smooth_boxes`
    (a forward mean of the corners), which would change every LSE crop.

    The kernel shrinks to the track length for tracks shorter than it (LSE tracks are
    longer than 100 frames, so this only matters for FID / PSNR / SSIM crops): with more
    padding zeros than values the median would be 0 and the crop empty.
    """
    n = len(boxes)
    kernel = max(1, min(kernel, n if n % 2 else n - 1))
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2.0
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0
    return (signal.medfilt(half, kernel_size=kernel), signal.medfilt(cx, kernel_size=kernel),
            signal.medfilt(cy, kernel_size=kernel))


def crop_window(frame: np.ndarray, half: float, cx: float, cy: float, crop_scale: float = 0.4,
                pad_value: int | None = PAD_VALUE) -> np.ndarray:
    """The reference's square face crop, without padding the whole frame.

    Geometry of run_pipeline.crop_video: pad ``bsi = int(bs*(1+2cs))`` on every
    side with ``pad_value``; rows ``[int(my-bs), int(my+bs(1+2cs)))`` and columns
    ``[int(mx-bs(1+cs)), int(mx+bs(1+cs)))`` of the padded frame, ``my = cy+bsi``.
    ``pad_value=None`` clips the window to the frame instead (no grey border).
    """
    bs = float(half)
    bsi = int(bs * (1 + 2 * crop_scale))
    my, mx = cy + bsi, cx + bsi
    top, bottom = int(my - bs), int(my + bs * (1 + 2 * crop_scale))
    left, right = int(mx - bs * (1 + crop_scale)), int(mx + bs * (1 + crop_scale))
    h, w = frame.shape[:2]
    # Slicing semantics of the padded frame (size h+2bsi, w+2bsi), including clamping.
    ph, pw = h + 2 * bsi, w + 2 * bsi
    top, bottom = _clamp_slice(top, bottom, ph)
    left, right = _clamp_slice(left, right, pw)
    if pad_value is None:
        y0, y1 = max(top - bsi, 0), min(bottom - bsi, h)
        x0, x1 = max(left - bsi, 0), min(right - bsi, w)
        return frame[y0:max(y0, y1), x0:max(x0, x1)]
    out = np.full((bottom - top, right - left) + frame.shape[2:], pad_value, dtype=frame.dtype)
    y0, y1 = max(top, bsi), min(bottom, bsi + h)
    x0, x1 = max(left, bsi), min(right, bsi + w)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = frame[y0 - bsi:y1 - bsi, x0 - bsi:x1 - bsi]
    return out


def _clamp_slice(start: int, stop: int, length: int) -> tuple[int, int]:
    """Python slice bounds (negative indices count from the end) as a plain [a, b) range."""
    a, b, _ = slice(start, stop).indices(length)
    return a, max(a, b)


def track_crops(frames_rgb: np.ndarray, track: FaceTrack, size: int = CROP_SIZE, crop_scale: float = 0.4,
                pad_value: int | None = PAD_VALUE) -> np.ndarray | list[np.ndarray]:
    """Crops of a track's frames; resized to ``size`` (RGB uint8) unless ``size`` is None."""
    crops = []
    for i, frame_index in enumerate(track.frames):
        crop = crop_window(frames_rgb[frame_index], track.half_size[i], track.centre_x[i], track.centre_y[i],
                           crop_scale, pad_value)
        if crop.size == 0:
            crop = np.full((2, 2, 3), PAD_VALUE, np.uint8)
        crops.append(crop if size is None else cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR))
    return crops if size is None else np.stack(crops)


# ----------------------------------------------------------------------------- detectors

def make_detector(name: str, device: str = "cpu", *, path=None, weights: str = "official", seed: int = 0,
                  conf_threshold: float = 0.9, scale: float = 0.25) -> Detector:
    """The ``lse_detector`` at the reference tools' settings, as a ``frame -> (K, 5)`` callable.

    ``s3fd``: syncnet_python's S3FD (``sfd_face.pth``), conf ``conf_threshold`` at
    ``scale`` (run_pipeline's ``facedet_scale``), NMS 0.1 inside the detector.
    ``dlib``: dlib's HOG detector on frames shrunk to at most 640 px, one pass
    without upsampling, boxes not clipped (the rule of the reference fixtures,
    tests/fixtures/eval_reference). Both come from :mod:`talkingface.face`.
    """
    if name == "dlib":
        from talkingface.face.dlib_detect import DlibBoxDetector

        return DlibBoxDetector(max_side=640, upsample=0, max_upsample=0, clip=False)
    if name == "s3fd":
        from talkingface.face.syncnet_s3fd import make_syncnet_detector

        return make_syncnet_detector(path, weights=weights, seed=seed, device=device,
                                     conf_threshold=conf_threshold, scales=(scale,))
    from talkingface.errors import ConfigError

    raise ConfigError(f"unknown lse_detector {name!r}", hint="use s3fd or dlib")
