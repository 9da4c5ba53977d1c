"""Bad and unusual media a real user feeds in: each a clear answer (docs/ROBUSTNESS.md)."""
import errno
import os
from pathlib import Path

import av
import numpy as np
import pytest

from talkingface.atomic import atomic_write_text
from talkingface.errors import InputMediaError, OutputError
from talkingface.media import load_audio, probe, read_video, write_video, write_wav


def _encode_audio(path: Path, codec: str, rate: int, channels: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    layout = "stereo" if channels == 2 else "mono"
    fmt = "fltp"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        data = np.stack([mono] * channels)
        frame_size = stream.codec_context.frame_size or 1024
        pts = 0
        for start in range(0, data.shape[1], frame_size):
            block = np.ascontiguousarray(data[:, start:start + frame_size])
            frame = av.AudioFrame.from_ndarray(block, format=fmt, layout=layout)
            frame.sample_rate, frame.pts = rate, pts
            pts += block.shape[1]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return mono


@pytest.mark.parametrize("name, codec, rate, channels", [
    ("a.mp3", "libmp3lame", 44100, 2),
    ("a.m4a", "aac", 48000, 2),
    ("a8k.wav", "pcm_s16le", 8000, 1),
    ("a48k.wav", "pcm_s16le", 48000, 2),
])
def test_audio_formats_become_16k_mono(tmp_path, name, codec, rate, channels):
    if codec == "pcm_s16le":  # pcm needs s16 frames: write with the stdlib-backed helper at that rate
        t = np.arange(rate) / rate
        write_wav(tmp_path / name, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), sample_rate=rate)
    else:
        _encode_audio(tmp_path / name, codec, rate, channels)
    audio = load_audio(tmp_path / name)
    assert abs(len(audio) - 16000) < 0.06 * 16000  # codec padding at most a few frames
    spectrum = np.abs(np.fft.rfft(audio[:16000] if len(audio) >= 16000 else np.pad(audio, (0, 16000 - len(audio)))))
    assert abs(int(np.argmax(spectrum)) - 300) <= 2


def test_silent_audio_loads_as_zeros(tmp_path):
    write_wav(tmp_path / "silence.wav", np.zeros(8000, np.float32))
    audio = load_audio(tmp_path / "silence.wav")
    assert len(audio) == 8000 and np.all(audio == 0)


def test_zero_length_and_truncated_video(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputMediaError, match="empty.mp4"):
        read_video(empty)
    good = tmp_path / "good.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (50, 64, 64, 3), dtype=np.uint8)
    write_video(good, frames, 25)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputMediaError, match="cut.mp4"):
        read_video(cut)  # moov atom at the end: a truncated mp4 cannot be opened; must say which file


def test_60fps_and_odd_sizes(tmp_path):
    path = tmp_path / "fast odd.mp4"
    frames = np.zeros((120, 35, 51, 3), np.uint8)
    write_video(path, frames, 60)
    clip = read_video(path)
    assert clip.fps == 25 and clip.num_frames == 50 and clip.source_fps == pytest.approx(60)


def test_non_ascii_and_space_paths(tmp_path):
    folder = tmp_path / "vidéos à tester" / "日本語"
    folder.mkdir(parents=True)
    path = folder / "clip 1 ü.mp4"
    write_video(path, np.zeros((5, 16, 16, 3), np.uint8), 25, np.zeros(3200, np.float32))
    assert read_video(path).num_frames == 5 and len(load_audio(path)) == 3200


def test_rotation_metadata_turns_frames_upright():
    """PyAV reports a display matrix as ``frame.rotation`` (counter-clockwise degrees)."""
    from talkingface.media.video import _apply_rotation

    frame = np.zeros((2, 4, 3), np.uint8)
    frame[0, 0] = 255  # top-left marker of a landscape frame
    upright = _apply_rotation(frame, -90)  # a phone's rotate=90 tag: display turned 90 degrees clockwise
    assert upright.shape[:2] == (4, 2) and upright[0, -1, 0] == 255
    assert _apply_rotation(frame, 0) is frame
    assert _apply_rotation(frame, 180)[-1, -1, 0] == 255


def test_read_only_output_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        # root ignores permission bits: then use a folder on a read-only file system instead
        target = folder if not os.access(folder, os.W_OK) else Path("/sys/talkingface-test")
        with pytest.raises(OutputError, match="make .* writable"):
            atomic_write_text(target / "results.json", "{}")
    finally:
        os.chmod(folder, 0o700)


def test_disk_full_while_writing_leaves_nothing(tmp_path, monkeypatch):
    real_write = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.endswith(".tmp.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match="free disk space"):
        atomic_write_text(tmp_path / "results.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_audio_only_file_where_video_needed(tmp_path):
    write_wav(tmp_path / "speech.wav", np.zeros(1600, np.float32))
    with pytest.raises(InputMediaError, match="no video stream"):
        read_video(tmp_path / "speech.wav")
    info = probe(tmp_path / "speech.wav")
    assert info["has_audio"] and not info["has_video"]
