"""Video read / write in one place (PyAV: no system ffmpeg needed).

Frames are numpy uint8 RGB ``(T, H, W, 3)``. Reading resamples to a constant
frame rate (25 fps by default) because every network and metric downstream
assumes it; the reference tools silently assume 25 fps instead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from talkingface.atomic import atomic_path
from talkingface.errors import InputMediaError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
DEFAULT_FPS = 25.0


@dataclass
class VideoClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float
    path: Path | None = None
    source_fps: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def _media_error(path: Path, what: str) -> InputMediaError:
    return InputMediaError(f"cannot read {path}: {what}",
                           hint="check that the file exists and is a complete video "
                                "(re-export it, e.g. `ffmpeg -i in -c:v libx264 out.mp4`)")


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    import cv2

    path = Path(path)
    if not path.is_file():
        raise _media_error(path, "file does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise _media_error(path, "not a readable image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _decode(path: Path) -> tuple[list[np.ndarray], list[float], float, int]:
    """All frames as RGB with their presentation times (seconds)."""
    if not path.is_file():
        raise _media_error(path, "file does not exist")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise _media_error(path, f"not a media file ({exc.strerror or type(exc).__name__})") from None
    frames: list[np.ndarray] = []
    times: list[float] = []
    rotation = 0
    with container:
        if not container.streams.video:
            raise _media_error(path, "it has no video stream (audio only?)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(DEFAULT_FPS)
        try:
            for frame in container.decode(stream):
                rotation = int(getattr(frame, "rotation", 0) or 0)
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times) / float(rate))
        except av.error.FFmpegError as exc:
            if not frames:
                raise _media_error(path, f"decoding failed ({exc.strerror or type(exc).__name__})") from None
            log.warning("%s: decoding stopped after %d frames (%s); using what was read",
                        path, len(frames), exc.strerror or type(exc).__name__)
    if not frames:
        raise _media_error(path, "it contains no video frames")
    return frames, times, float(rate), rotation


def _apply_rotation(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display-matrix rotation so the face is upright.

    PyAV's ``frame.rotation`` is FFmpeg's counter-clockwise display angle (a phone's
    ``rotate=90`` tag reads -90, i.e. show it turned 90 degrees clockwise).
    """
    turns = (rotation // 90) % 4  # np.rot90 turns counter-clockwise
    return np.rot90(frame, k=turns) if turns else frame


def resample_indices(times: list[float] | np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Which source frame to show at each output tick (nearest in time).

    Works for variable frame rates because it uses presentation times, not indices.
    The output covers the source duration (last time + one source frame).
    """
    times = np.asarray(times, dtype=np.float64)
    times = times - times[0]
    duration = times[-1] + 1.0 / source_fps
    count = max(1, int(round(duration * target_fps)))
    ticks = np.arange(count) / target_fps
    pos = np.searchsorted(times, ticks, side="left")
    pos = np.clip(pos, 0, len(times) - 1)
    prev = np.clip(pos - 1, 0, len(times) - 1)
    choose_prev = np.abs(ticks - times[prev]) <= np.abs(times[pos] - ticks)
    return np.where(choose_prev, prev, pos)


def read_video(path: str | Path, fps: float | None = DEFAULT_FPS) -> VideoClip:
    """Decode a video (or a still image, as one frame) and resample to ``fps``.

    ``fps=None`` keeps the source rate. Rotation metadata is applied.
    """
    path = Path(path)
    if is_image(path):
        return VideoClip(read_image(path)[None], float(fps or DEFAULT_FPS), path, None, {"image": True})
    frames, times, source_fps, rotation = _decode(path)
    if fps is not None and abs(source_fps - fps) > 1e-3 or _is_variable(times, source_fps):
        target = float(fps or source_fps)
        index = resample_indices(times, source_fps, target)
        if fps is not None and abs(source_fps - fps) > 1e-3:
            log.info("%s: resampled %.3f fps -> %.3f fps (%d -> %d frames)",
                     path.name, source_fps, target, len(frames), len(index))
        frames = [frames[i] for i in index]
    else:
        target = float(fps or source_fps)
    stacked = np.stack([_apply_rotation(f, rotation) for f in frames]) if rotation else np.stack(frames)
    return VideoClip(stacked, target, path, source_fps, {"rotation": rotation})


def _is_variable(times: list[float], fps: float) -> bool:
    if len(times) < 3:
        return False
    steps = np.diff(np.asarray(times))
    return bool(np.max(np.abs(steps - 1.0 / fps)) > 0.5 / fps)


def probe(path: str | Path) -> dict:
    """Cheap metadata (fps, size, frame count estimate, has audio) without decoding."""
    path = Path(path)
    if not path.is_file():
        raise _media_error(path, "file does not exist")
    try:
        with av.open(str(path)) as container:
            info: dict = {"has_video": bool(container.streams.video),
                          "has_audio": bool(container.streams.audio)}
            if container.streams.video:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                info.update(width=stream.codec_context.width, height=stream.codec_context.height,
                            fps=float(rate) if rate else None, frames=stream.frames or None)
            if container.duration is not None:
                info["duration"] = container.duration / 1_000_000
            return info
    except av.error.FFmpegError as exc:
        raise _media_error(path, f"not a media file ({exc.strerror or type(exc).__name__})") from None


def _even(frames: np.ndarray) -> np.ndarray:
    """H.264 4:2:0 needs even sizes: replicate the last row / column when odd."""
    _, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def write_video(path: str | Path, frames: np.ndarray, fps: float = DEFAULT_FPS,
                audio: np.ndarray | None = None, sample_rate: int = 16000, *, crf: int = 18,
                preset: str = "medium") -> Path:
    """Encode H.264 mp4 (+ AAC audio when given), atomically.

    Odd sizes are padded by one replicated row/column (a 4:2:0 constraint).
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T,H,W,3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("no frames to write")
    frames = _even(frames)
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            vstream = container.add_stream("libx264", rate=rate)
            vstream.width, vstream.height = int(frames.shape[2]), int(frames.shape[1])
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"crf": str(crf), "preset": preset}
            astream = None
            if audio is not None:
                astream = container.add_stream("aac", rate=sample_rate)
                astream.layout = "mono"
            for image in frames:
                for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
            if astream is not None:
                _encode_audio(container, astream, np.asarray(audio, dtype=np.float32), sample_rate)
    return path


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    chunk = 1024
    pts = 0
    for start in range(0, len(audio), chunk):
        block = audio[start:start + chunk]
        frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += len(block)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
