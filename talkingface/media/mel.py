"""Wav2Lip-style mel spectrogram and per-frame mel chunks (the L-Net audio input).

Same numbers as the official ``utils/audio.py`` (librosa 0.9.2 era), computed in
torch so it runs on CPU or GPU without librosa:

* 16 kHz mono, pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``lfilter([1, -0.97], [1])``);
* centred STFT, n_fft 800, hop 200, periodic Hann window of 800, zero padding of
  400 samples per side (librosa >= 0.9 ``pad_mode="constant"``) -> ``1 + len // 200`` frames;
* magnitude -> 80 Slaney mel bands 55-7600 Hz (``librosa.filters.mel`` defaults, float32 filters);
* ``20 log10(max(1e-5, m)) - 20`` dB, mapped linearly from [-100, 0] dB to [-4, 4] and clipped.

Computed in float64 by default like the reference (numpy promotes to float64);
float32 loses precision in quiet bins (a 100 dB range is close to float32's FFT noise).
On the CPU the same steps run in numpy/scipy (strided frames, one real FFT over all
of them): 4x faster than torch's float64 stft with one thread and bit-identical
(bench/results/mel.md); torch is used for audio already on another device.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from talkingface.errors import InputMediaError

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS = 4.0
MEL_STEP = 16  # mel frames per chunk (0.2 s)
MEL_FPS = SAMPLE_RATE / HOP  # 80 mel frames per second

_F_SP = 200.0 / 3  # Slaney scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0  # ... logarithmic above


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


@functools.lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
                   fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Slaney-scale, Slaney-normalised triangular filters (n_mels, 1 + n_fft // 2), float32.

    Triangles span consecutive mel-spaced edge frequencies; each is scaled to
    unit area (``2 / (f_hi - f_lo)``), the librosa default.
    """
    fft_freqs = np.arange(1 + n_fft // 2) * (1.0 / (n_fft * (1.0 / sample_rate)))
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    offsets = edges[:, None] - fft_freqs[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    # rounded to float32 before and after the area normalisation, as librosa stores them
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def _as_tensor(wav: np.ndarray | torch.Tensor, device: torch.device | str | None, dtype: torch.dtype) -> torch.Tensor:
    tensor = wav if isinstance(wav, torch.Tensor) else torch.from_numpy(np.asarray(wav))
    if device is not None:
        tensor = tensor.to(device)
    if tensor.dim() != 1:
        raise InputMediaError(f"melspectrogram expects mono audio (1-D samples), got shape {tuple(tensor.shape)}",
                              hint="downmix to mono first (talkingface.media.load_audio does)")
    return tensor.to(dtype)


def melspectrogram(wav: np.ndarray | torch.Tensor, *, device: torch.device | str | None = None,
                   compute_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """16 kHz mono samples -> normalised mel spectrogram (80, 1 + len // 200), float32 in [-4, 4].

    Runs on ``device`` (default: where ``wav`` is; numpy input -> CPU).
    """
    on_cpu = (device is None or torch.device(device).type == "cpu") and not (
        isinstance(wav, torch.Tensor) and wav.device.type != "cpu")
    if on_cpu and compute_dtype == torch.float64:
        return torch.from_numpy(_melspectrogram_numpy(wav))
    return _melspectrogram_torch(wav, device, compute_dtype)


def _melspectrogram_torch(wav: np.ndarray | torch.Tensor, device: torch.device | str | None,
                          compute_dtype: torch.dtype) -> torch.Tensor:
    """:func:`melspectrogram` in torch (audio on a GPU, or a float32 computation)."""
    y = _as_tensor(wav, device, compute_dtype)
    if y.numel() == 0:
        raise InputMediaError("melspectrogram: the audio is empty", hint="give audio with at least 0.2 s of sound")
    if not torch.isfinite(y).all():
        raise InputMediaError("melspectrogram: the audio contains NaN or inf samples",
                              hint="re-export the audio; a damaged decode produced non-finite values")
    emphasized = torch.cat([y[:1], y[1:] - PREEMPHASIS * y[:-1]])
    window = torch.hann_window(WIN, periodic=True, dtype=compute_dtype, device=y.device)
    spec = torch.stft(emphasized, n_fft=N_FFT, hop_length=HOP, win_length=WIN, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    basis = torch.from_numpy(mel_filterbank()).to(device=y.device, dtype=compute_dtype)
    mel = basis @ spec.abs()
    min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
    db = 20.0 * torch.log10(torch.clamp(mel, min=min_level)) - REF_LEVEL_DB
    normalized = (2 * MAX_ABS) * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS
    return torch.clamp(normalized, -MAX_ABS, MAX_ABS).to(torch.float32)


def _melspectrogram_numpy(wav: np.ndarray | torch.Tensor) -> np.ndarray:
    """:func:`melspectrogram` on the CPU in float64 numpy/scipy: the same steps, the same numbers."""
    import scipy.fft

    y = wav.detach().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    if y.ndim != 1:
        raise InputMediaError(f"melspectrogram expects mono audio (1-D samples), got shape {tuple(y.shape)}",
                              hint="downmix to mono first (talkingface.media.load_audio does)")
    y = y.astype(np.float64)
    if y.size == 0:
        raise InputMediaError("melspectrogram: the audio is empty", hint="give audio with at least 0.2 s of sound")
    if not np.isfinite(y).all():
        raise InputMediaError("melspectrogram: the audio contains NaN or inf samples",
                              hint="re-export the audio; a damaged decode produced non-finite values")
    emphasized = np.empty_like(y)
    emphasized[0] = y[0]
    emphasized[1:] = y[1:] - PREEMPHASIS * y[:-1]
    padded = np.pad(emphasized, N_FFT // 2)  # centred frames, zero padding (pad_mode="constant")
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann
    magnitude = np.abs(scipy.fft.rfft(frames * window, axis=1))
    mel = magnitude @ mel_filterbank().astype(np.float64).T
    min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
    db = 20.0 * np.log10(np.maximum(mel, min_level)) - REF_LEVEL_DB
    normalized = (2 * MAX_ABS) * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS
    return np.ascontiguousarray(np.clip(normalized, -MAX_ABS, MAX_ABS).T, dtype=np.float32)


def chunk_starts(num_mel_frames: int, fps: float) -> list[int]:
    """Start index of each chunk, following the official loop exactly.

    Chunk ``i`` starts at ``int(i * (80 / fps))``; when a chunk would run past the
    end, the last 16 frames are taken once more and the loop stops (so the final
    chunk can repeat the previous one).
    """
    if fps <= 0:
        raise InputMediaError(f"mel chunks need a positive fps, got {fps}", hint="check the video's frame rate")
    if num_mel_frames < MEL_STEP:
        raise InputMediaError(
            f"the audio is too short for lip-sync: {num_mel_frames} mel frames, at least {MEL_STEP} are needed",
            hint=f"give at least {MEL_STEP / MEL_FPS:.2f} s of audio")
    multiplier = 80.0 / fps  # same float expression as the official code (boundary rounding)
    starts: list[int] = []
    i = 0
    while True:
        start = int(i * multiplier)
        if start + MEL_STEP > num_mel_frames:
            starts.append(num_mel_frames - MEL_STEP)
            break
        starts.append(start)
        i += 1
    return starts


def mel_chunks(mel: torch.Tensor | np.ndarray, num_frames: int | None, fps: float) -> torch.Tensor:
    """(80, T) mel -> (N, 80, 16): one window per video frame, as the official inference builds them.

    ``N`` is set by the audio length (official rule); ``num_frames`` caps it when
    given (the official code then also drops video frames beyond ``N``).
    """
    mel = mel if isinstance(mel, torch.Tensor) else torch.from_numpy(np.asarray(mel))
    starts = chunk_starts(mel.shape[1], fps)
    if num_frames is not None:
        starts = starts[:num_frames]
    index = torch.tensor(starts, device=mel.device)[:, None] + torch.arange(MEL_STEP, device=mel.device)
    return mel[:, index].permute(1, 0, 2).contiguous()
