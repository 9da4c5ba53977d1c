"""Video read / write in one place (PyAV: no system ffmpeg needed).

Frames are numpy uint8 RGB ``(T, H, W, 3)``. Reading resamples to a constant
frame rate (25 fps by default) because every network and metric downstream
assumes it; the reference tools silently assume 25 fps instead.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
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


def _decoded_frames(path: Path, on_open: Callable[[float], None] | None = None
                    ) -> Iterator[tuple[av.VideoFrame, float, int]]:
    """Yield ``(decoded frame, presentation time in s, rotation)`` one at a time, without holding the clip.

    Frames stay PyAV frames: :func:`_rgb` converts the ones a caller keeps, so
    passes that only need timestamps, or skip frames, pay no colour conversion.
    ``on_open(frame_rate)`` is called once the stream is open, before the first frame.
    """
    if not path.is_file():
        raise _media_error(path, "file does not exist")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise _media_error(path, f"not a media file ({exc.strerror or type(exc).__name__})") from None
    count = 0
    with container:
        if not container.streams.video:
            raise _media_error(path, "it has no video stream (audio only?)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or Fraction(DEFAULT_FPS))
        if on_open is not None:
            on_open(rate)
        try:
            for frame in container.decode(stream):
                time = float(frame.time) if frame.time is not None else count / rate
                count += 1
                yield frame, time, int(getattr(frame, "rotation", 0) or 0)
        except av.error.FFmpegError as exc:
            if not count:
                raise _media_error(path, f"decoding failed ({exc.strerror or type(exc).__name__})") from None
            log.warning("%s: decoding stopped after %d frames (%s); using what was read",
                        path, count, exc.strerror or type(exc).__name__)
    if not count:
        raise _media_error(path, "it contains no video frames")


def _decode(path: Path) -> tuple[list[np.ndarray], list[float], float, int]:
    """All frames as RGB with their presentation times (seconds), the stream's rate and rotation."""
    rates: list[float] = []
    frames: list[np.ndarray] = []
    times: list[float] = []
    rotation = 0
    for frame, time, rotation in _decoded_frames(path, rates.append):
        frames.append(_rgb(frame))
        times.append(time)
    return frames, times, rates[0], rotation


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def _upright(frame: np.ndarray, rotation: int, transform: Callable[[np.ndarray], np.ndarray] | None) -> np.ndarray:
    """A decoded frame as the caller sees it: display rotation applied, then ``transform``."""
    frame = _apply_rotation(frame, rotation) if rotation else frame
    return transform(frame) if transform is not None else frame


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


def read_video(path: str | Path, fps: float | None = DEFAULT_FPS, *, lazy: bool = False,
               transform: Callable[[np.ndarray], np.ndarray] | None = None) -> VideoClip:
    """Decode a video (or a still image, as one frame) and resample to ``fps``.

    ``fps=None`` keeps the source rate. Rotation metadata is applied, then
    ``transform`` (e.g. a crop) to each frame. ``lazy=True`` decodes nothing up
    front but the timestamps: ``frames`` is a :class:`DecodedFrames` that
    decodes frames as they are asked for, so a long 1080p clip costs neither
    memory nor disk.
    """
    path = Path(path)
    if is_image(path):
        image = read_image(path)
        frames = (transform(image) if transform is not None else image)[None]
        return VideoClip(np.ascontiguousarray(frames), float(fps or DEFAULT_FPS), path, None, {"image": True})
    if lazy:
        frames = DecodedFrames(path, fps, transform)
        return VideoClip(frames, frames.fps, path, frames.source_fps, {"rotation": frames.rotation})
    frames, times, source_fps, rotation = _decode(path)
    index, target = _resampling(path, times, source_fps, fps, len(frames))
    if index is not None:
        frames = [frames[i] for i in index]
    if rotation or transform is not None:
        frames = [_upright(f, rotation, transform) for f in frames]
    return VideoClip(np.stack(frames), target, path, source_fps, {"rotation": rotation})


class DecodedFrames:
    """A clip's frames at ``fps``, decoded on demand: ``len``, ``shape``, ``frames[i]``, ``frames[a:b]``, iteration.

    A first pass reads presentation times only (frames are decoded and
    dropped); after that, frames come from one forward-running decoder,
    restarted when an earlier frame is asked for (the pipeline reads the clip
    front to back a few times, and wraps around when the audio is longer). The
    last few frames are kept, so neighbouring stages asking for the same frame
    decode it once. ``np.asarray(frames)`` decodes everything (avoid on long
    clips).
    """

    _KEEP = 32  # recently decoded output frames kept

    def __init__(self, path: Path, fps: float | None, transform: Callable[[np.ndarray], np.ndarray] | None,
                 count: int | None = None, _probe: tuple | None = None) -> None:
        self.path, self.transform = Path(path), transform
        if _probe is None:
            rates: list[float] = []
            times: list[float] = []
            first = None
            for frame, time, rotation in _decoded_frames(self.path, rates.append):
                if first is None:
                    first = frame
                times.append(time)
            source_fps = rates[0]
            index, target = _resampling(self.path, times, source_fps, fps, len(times))
            index = np.arange(len(times)) if index is None else np.asarray(index)
            _probe = (index, target, source_fps, rotation, tuple(_upright(_rgb(first), rotation, transform).shape))
        self._index, self.fps, self.source_fps, self.rotation, frame_shape = _probe
        self._probe = _probe
        self._count = len(self._index) if count is None else min(count, len(self._index))
        self.shape = (self._count, *frame_shape)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 4
        self._decoder = None
        self._source_pos = -1  # index of the last source frame the decoder produced
        self._source_frame: av.VideoFrame | None = None
        self._recent: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self._count

    def head(self, count: int) -> DecodedFrames:
        """The first ``count`` frames, still lazy (shares the timestamp pass)."""
        return DecodedFrames(self.path, None, self.transform, count=count, _probe=self._probe)

    def _source(self, wanted: int) -> av.VideoFrame:
        if self._decoder is None or wanted < self._source_pos:
            self._decoder = _decoded_frames(self.path)
            self._source_pos = -1
        while self._source_pos < wanted:
            frame, _, _ = next(self._decoder)
            self._source_pos += 1
            self._source_frame = frame
        return self._source_frame

    def _frame(self, i: int) -> np.ndarray:
        if not -self._count <= i < self._count:
            raise IndexError(f"frame {i} of a {self._count}-frame clip")
        i %= self._count
        if i not in self._recent:
            frame = np.ascontiguousarray(_upright(_rgb(self._source(int(self._index[i]))), self.rotation,
                                                  self.transform))
            frame.flags.writeable = False
            if len(self._recent) >= self._KEEP:
                self._recent.pop(next(iter(self._recent)))
            self._recent[i] = frame
        return self._recent[i]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._frame(int(key))
        if isinstance(key, slice):
            return self._stack(range(*key.indices(self._count)))
        if isinstance(key, tuple) and key:  # frames[i, rows, cols] / frames[a:b, rows, cols]
            picked = self[key[0]]
            return picked[key[1:]] if isinstance(key[0], (int, np.integer)) else picked[(slice(None), *key[1:])]
        return self._stack(np.arange(self._count)[key])  # index arrays / lists

    def _stack(self, indices) -> np.ndarray:
        indices = list(indices)
        if not indices:
            return np.empty((0, *self.shape[1:]), np.uint8)
        return np.stack([self._frame(int(i)) for i in indices])

    def __iter__(self):
        for i in range(self._count):
            yield self._frame(i)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._stack(range(self._count))
        return out if dtype is None else out.astype(dtype)


def _resampling(path: Path, times: list[float], source_fps: float, fps: float | None,
                count: int) -> tuple[np.ndarray | None, float]:
    """Source frame per output tick (None: keep every frame as it is) and the output rate."""
    target = float(fps or source_fps)
    if fps is not None and abs(source_fps - fps) > 1e-3 or _is_variable(times, source_fps):
        index = resample_indices(times, source_fps, target)
        if fps is not None and abs(source_fps - fps) > 1e-3:
            log.info("%s: resampled %.3f fps -> %.3f fps (%d -> %d frames)",
                     path.name, source_fps, target, count, len(index))
        return index, target
    return None, target


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


class VideoWriter:
    """Encode H.264 mp4 frame batch by frame batch (+ AAC audio at the end), atomically.

    The pipeline composes frames in batches; writing each batch as it comes
    keeps the output out of memory. Nothing appears at ``path`` unless the
    block finishes: an exception leaves no partial file.

        with VideoWriter(out, fps, audio, 16000) as writer:
            writer.write(batch)   # uint8 (N, H, W, 3) RGB, same size every time
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, audio: np.ndarray | None = None,
                 sample_rate: int = 16000, *, crf: int = 18, preset: str = "medium") -> None:
        self.path = Path(path)
        self.fps, self.audio, self.sample_rate = fps, audio, sample_rate
        self.crf, self.preset = crf, preset
        self.frames_written = 0
        self._stack = contextlib.ExitStack()
        self._container = None
        self._stream = None
        self._audio_stream = None

    def __enter__(self) -> VideoWriter:
        with self._stack as stack:  # unwound only if opening fails
            tmp = stack.enter_context(atomic_path(self.path))
            self._container = av.open(str(tmp), mode="w", format="mp4")
            stack.callback(self._container.close)  # closed before the rename (LIFO)
            self._stack = stack.pop_all()
        return self

    def write(self, frames: np.ndarray) -> None:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (T,H,W,3), got {frames.dtype} {frames.shape}")
        frames = _even(frames)
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = int(frames.shape[2]), int(frames.shape[1])
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf), "preset": self.preset}
            if self.audio is not None:  # every stream must exist before the first packet is muxed
                self._audio_stream = self._container.add_stream("aac", rate=self.sample_rate)
                self._audio_stream.layout = "mono"
        elif (frames.shape[2], frames.shape[1]) != (self._stream.width, self._stream.height):
            raise ValueError(f"frame size {frames.shape[2]}x{frames.shape[1]} differs from the first "
                             f"{self._stream.width}x{self._stream.height}")
        for image in frames:
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                self._container.mux(packet)
        self.frames_written += len(frames)

    def _finish(self) -> None:
        if self._stream is None:
            raise ValueError("no frames to write")
        for packet in self._stream.encode():
            self._container.mux(packet)
        if self._audio_stream is not None:
            _encode_audio(self._container, self._audio_stream, np.asarray(self.audio, dtype=np.float32),
                          self.sample_rate)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                if not self._stack.__exit__(*sys.exc_info()):
                    raise
                return False
        return bool(self._stack.__exit__(exc_type, exc, tb))


def write_video(path: str | Path, frames: np.ndarray, fps: float = DEFAULT_FPS,
                audio: np.ndarray | None = None, sample_rate: int = 16000, *, crf: int = 18,
                preset: str = "medium") -> Path:
    """Encode a whole clip: H.264 mp4 (+ AAC audio when given), atomically.

    Odd sizes are padded by one replicated row/column (a 4:2:0 constraint).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T,H,W,3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("no frames to write")
    with VideoWriter(path, fps, audio, sample_rate, crf=crf, preset=preset) as writer:
        writer.write(frames)
    return Path(path)


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
