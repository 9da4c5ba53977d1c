"""Audio read / write and length fitting.

Everything downstream (mel for L-Net, MFCC for SyncNet) expects 16 kHz mono
float32 in [-1, 1]; this module is the one place that gets it there, from any
container PyAV can open (wav, mp3, m4a, the audio track of an mp4...).
"""
from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np

from talkingface.atomic import atomic_path
from talkingface.errors import InputMediaError

SAMPLE_RATE = 16000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode, downmix to mono and resample; float32 in [-1, 1]."""
    path = Path(path)
    if not path.is_file():
        raise InputMediaError(f"cannot read audio {path}: file does not exist",
                              hint="check the path (audio can be a wav/mp3/m4a file or a video with sound)")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputMediaError(f"cannot read audio {path}: not a media file ({exc.strerror or type(exc).__name__})",
                              hint="convert it, e.g. `ffmpeg -i in -ar 16000 -ac 1 out.wav`") from None
    blocks: list[np.ndarray] = []
    with container:
        if not container.streams.audio:
            raise InputMediaError(f"cannot read audio {path}: it has no audio stream",
                                  hint="give a file with sound (a wav, or a video with an audio track)")
        stream = container.streams.audio[0]
        declared = (float(stream.duration * stream.time_base)
                    if stream.duration is not None and stream.time_base is not None else None)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not blocks:
                raise InputMediaError(f"cannot read audio {path}: decoding failed ({exc.strerror})",
                                      hint="the file is damaged; re-export it") from None
        for out in resampler.resample(None):
            blocks.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)
    if declared is not None:
        # AAC pads its last frame to 1024 samples; the container knows the true length.
        audio = audio[: int(round(declared * sample_rate))]
    if audio.size == 0:
        raise InputMediaError(f"cannot read audio {path}: the audio stream is empty",
                              hint="give a file with at least a fraction of a second of sound")
    return audio


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """16-bit PCM wav, atomically (stdlib only)."""
    pcm = (np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(sample_rate)
            handle.writeframes(pcm.tobytes())
    return Path(path)


def fit_length(audio: np.ndarray, num_samples: int, mode: str = "loop") -> np.ndarray:
    """Make audio exactly ``num_samples`` long.

    ``loop``: longer audio is trimmed, shorter is repeated from the start (the
    unpaired protocol: the video's length decides). ``pad``: shorter is padded
    with silence. ``trim``: only trims (shorter stays shorter).
    """
    if num_samples <= 0:
        raise ValueError("num_samples must be positive")
    if len(audio) >= num_samples or mode == "trim":
        return audio[:num_samples]
    if mode == "pad":
        return np.pad(audio, (0, num_samples - len(audio)))
    if mode != "loop":
        raise ValueError(f"unknown mode {mode!r}")
    reps = -(-num_samples // len(audio))
    return np.tile(audio, reps)[:num_samples]


def samples_for_frames(num_frames: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(num_frames * sample_rate / fps))
