"""Wav2Lip-style mel front end vs an independent librosa/scipy computation, and chunk indexing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from talkingface.errors import InputMediaError
from talkingface.media.mel import chunk_starts, mel_chunks, mel_filterbank, melspectrogram

librosa = pytest.importorskip("librosa")
signal = pytest.importorskip("scipy.signal")


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced harmonics with a syllable envelope + quiet noise + a silent gap: exercises both clip ends."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    wav = 0.3 * voiced * envelope + 0.003 * rng.standard_normal(t.size)
    wav[len(wav) // 2: len(wav) // 2 + 1600] = 0.0  # 0.1 s digital silence -> clipped at -4
    return wav.astype(np.float32)


def _reference_mel(wav: np.ndarray) -> np.ndarray:
    """The official utils/audio.py recipe written with librosa + scipy (independent of our code)."""
    emphasized = signal.lfilter([1, -0.97], [1], wav)
    stft = librosa.stft(y=emphasized, n_fft=800, hop_length=200, win_length=800, pad_mode="constant")
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(np.exp(-100 / 20 * np.log(10)), basis @ np.abs(stft))) - 20
    return np.clip(8 * ((db + 100) / 100) - 4, -4, 4)


def test_melspectrogram_matches_librosa_recipe():
    wav = _speechlike(2.05)
    ours = melspectrogram(wav)
    ref = _reference_mel(wav)
    assert ours.dtype == torch.float32 and tuple(ours.shape) == ref.shape == (80, 1 + len(wav) // 200)
    assert np.abs(ours.numpy() - ref).max() / 8.0 <= 1e-5
    # the test signal really spans the range: silence clips at -4, voiced bands are well above it
    assert ours.min().item() == -4.0 and ours.max().item() > 0.5


def test_filterbank_equals_librosa_slaney():
    ref = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    np.testing.assert_allclose(mel_filterbank(), ref, rtol=0, atol=1e-7)


def test_tensor_input_and_float64_wav_agree_with_numpy():
    wav = _speechlike(0.5, seed=1)
    from_numpy = melspectrogram(wav)
    from_tensor = melspectrogram(torch.from_numpy(wav.astype(np.float64)))
    assert torch.equal(from_numpy, from_tensor)


def test_bad_audio_is_a_clear_error():
    with pytest.raises(InputMediaError, match="mono"):
        melspectrogram(np.zeros((2, 1600), np.float32))
    with pytest.raises(InputMediaError, match="NaN"):
        melspectrogram(np.array([0.0, np.nan, 0.1], np.float32))
    with pytest.raises(InputMediaError, match="too short"):
        chunk_starts(15, 25)


def _official_loop(num_mel: int, fps: float) -> list[int]:
    """The chunk loop of the official inference.py, transcribed."""
    step, mult, i, starts = 16, 80.0 / fps, 0, []
    while True:
        start = int(i * mult)
        if start + step > num_mel:
            starts.append(num_mel - step)
            break
        starts.append(start)
        i += 1
    return starts


@pytest.mark.parametrize("fps", [25, 30, 29.97])
def test_chunk_starts_follow_official_loop(fps):
    for num_mel in (16, 17, 80, 161, 401, 1000):
        assert chunk_starts(num_mel, fps) == _official_loop(num_mel, fps)


def test_chunk_values_at_25_and_30_fps():
    mel = torch.arange(80 * 60, dtype=torch.float32).reshape(80, 60)
    chunks25 = mel_chunks(mel, None, 25)
    # 80 / 25 = 3.2 mel frames per video frame: starts 0, 3, 6, 9, ..., 41, then the tail 44
    assert chunk_starts(60, 25) == [0, 3, 6, 9, 12, 16, 19, 22, 25, 28, 32, 35, 38, 41, 44, 44]
    assert chunks25.shape == (16, 80, 16)
    assert torch.equal(chunks25[5], mel[:, 16:32])
    assert torch.equal(chunks25[-1], mel[:, 44:60]) and torch.equal(chunks25[-2], chunks25[-1])
    # 80 / 30: 0, 2, 5, 8, 10, 13, ... the last regular start 42, then the tail 44
    starts30 = chunk_starts(60, 30)
    assert starts30[:6] == [0, 2, 5, 8, 10, 13] and starts30[-2:] == [42, 44] and len(starts30) == 18
    assert torch.equal(mel_chunks(mel, None, 30)[3], mel[:, 8:24])
    assert mel_chunks(mel, 4, 30).shape == (4, 80, 16)  # num_frames caps the count



def test_cpu_numpy_path_equals_torch_path():
    """The CPU fast path (numpy/scipy) and the torch path (GPU audio) give the same float64 numbers."""
    from talkingface.media.mel import _melspectrogram_numpy, _melspectrogram_torch

    wav = _speechlike(1.3, seed=2)
    fast = _melspectrogram_numpy(wav)
    slow = _melspectrogram_torch(wav, None, torch.float64).numpy()
    assert fast.dtype == np.float32 and fast.shape == slow.shape
    assert np.abs(fast - slow).max() <= 1e-6
    assert np.array_equal(melspectrogram(wav).numpy(), fast)  # the CPU default takes the fast path
