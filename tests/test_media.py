import numpy as np
import pytest

from talkingface.errors import InputMediaError
from talkingface.media import fit_length, load_audio, probe, read_video, write_video, write_wav
from talkingface.media.video import resample_indices


def _frames(n, h=48, w=64, seed=0):
    """Frames with a moving bright bar so frame order is checkable after encoding."""
    frames = np.full((n, h, w, 3), 40, np.uint8)
    for i in range(n):
        frames[i, :, (i * 3) % w: (i * 3) % w + 3] = 230
    return frames


def _speech_like(seconds, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * sr))).astype(np.float32)


def test_round_trip_30fps_to_25fps_keeps_duration(tmp_path):
    path = tmp_path / "in.mp4"
    audio = _speech_like(2.0)
    write_video(path, _frames(60), fps=30, audio=audio)
    clip = read_video(path)  # resampled to 25 fps
    assert clip.fps == 25.0 and clip.source_fps == pytest.approx(30.0)
    assert abs(clip.duration - 2.0) <= 1 / 25
    assert clip.num_frames == 50
    back = load_audio(path)
    assert abs(len(back) / 16000 - 2.0) <= 1 / 25
    # AAC is lossy but aligned: strong correlation at lag 0
    corr = np.corrcoef(back[:16000], audio[:16000])[0, 1]
    assert corr > 0.8


def test_frame_order_survives_encoding(tmp_path):
    path = tmp_path / "bar.mp4"
    frames = _frames(25)
    write_video(path, frames, fps=25)
    clip = read_video(path, fps=None)
    assert clip.num_frames == 25
    bar_cols = clip.frames[:, 24, :, 1].astype(int).argmax(axis=1)
    assert np.all(np.abs(bar_cols - np.array([(i * 3) % 64 for i in range(25)])) <= 2)


def test_odd_size_is_padded_to_even(tmp_path):
    path = tmp_path / "odd.mp4"
    write_video(path, _frames(5, h=33, w=47), fps=25)
    info = probe(path)
    assert (info["width"], info["height"]) == (48, 34)


def test_resample_indices_nearest_and_vfr():
    assert resample_indices(np.arange(60) / 30, 30, 25).tolist()[:6] == [0, 1, 2, 4, 5, 6]
    # variable frame rate: a gap in timestamps is filled by the frame nearest in time (tie -> earlier)
    times = [0, 0.04, 0.08, 0.40, 0.44]
    idx = resample_indices(times, 25, 25)
    assert idx.tolist() == [0, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4]


def test_audio_resampled_to_16k_mono(tmp_path):
    sr = 48000
    t = np.arange(sr) / sr
    stereo_like = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(tmp_path / "a.wav", stereo_like, sample_rate=sr)
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and len(audio) == 16000
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second


def test_fit_length_modes():
    a = np.arange(5, dtype=np.float32)
    assert fit_length(a, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert fit_length(a, 3).tolist() == [0, 1, 2]
    assert fit_length(a, 7, "pad").tolist() == [0, 1, 2, 3, 4, 0, 0]


def test_unreadable_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 10)
    with pytest.raises(InputMediaError, match="junk.mp4"):
        read_video(junk)
    with pytest.raises(InputMediaError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    write_wav(tmp_path / "only.wav", _speech_like(0.5))
    with pytest.raises(InputMediaError, match="no video stream"):
        read_video(tmp_path / "only.wav")
    write_video(tmp_path / "silent.mp4", _frames(5), fps=25)
    with pytest.raises(InputMediaError, match="no audio stream"):
        load_audio(tmp_path / "silent.mp4")


def test_writes_are_atomic(tmp_path):
    with pytest.raises(ValueError):
        write_video(tmp_path / "bad.mp4", np.zeros((3, 8, 8), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source_fps", [25, 30])
def test_lazy_read_equals_in_memory_read(tmp_path, source_fps):
    """``lazy=True``: frames decoded on demand, same pixels, rate and length as the in-memory path."""
    from talkingface.media.video import DecodedFrames

    path = tmp_path / "in.mp4"
    write_video(path, _frames(30), fps=source_fps)
    memory = read_video(path)
    lazy = read_video(path, lazy=True, transform=lambda f: f[4:44, 8:56])
    frames = lazy.frames
    assert isinstance(frames, DecodedFrames) and not frames[0].flags.writeable
    assert lazy.fps == memory.fps == 25 and len(frames) == memory.num_frames
    assert frames.shape == (memory.num_frames, 40, 48, 3)
    expected = memory.frames[:, 4:44, 8:56]
    assert np.array_equal(np.asarray(frames), expected)
    # random access, backwards (decoder restarts), slices, index lists, head()
    assert np.array_equal(frames[-1], expected[-1]) and np.array_equal(frames[3], expected[3])
    assert np.array_equal(frames[5:9], expected[5:9]) and np.array_equal(frames[[7, 2]], expected[[7, 2]])
    head = frames.head(4)
    assert len(head) == 4 and head.shape[0] == 4 and np.array_equal(np.asarray(head), expected[:4])
    with pytest.raises(IndexError):
        head[4]


def test_lazy_read_of_a_broken_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputMediaError, match="bad.mp4"):
        read_video(bad, lazy=True)


def test_streaming_writer_batches_and_audio(tmp_path):
    from talkingface.media.video import VideoWriter

    frames, audio = _frames(20), _speech_like(0.8)
    with VideoWriter(tmp_path / "out.mp4", 25, audio, 16000) as writer:
        for start in range(0, 20, 6):
            writer.write(frames[start:start + 6])
    assert writer.frames_written == 20
    clip = read_video(tmp_path / "out.mp4")
    assert clip.num_frames == 20
    assert np.abs(clip.frames.astype(int) - frames.astype(int)).mean() < 3
    assert abs(len(load_audio(tmp_path / "out.mp4")) - len(audio)) <= 1024


def test_streaming_writer_error_leaves_no_file(tmp_path):
    from talkingface.media.video import VideoWriter

    with pytest.raises(RuntimeError, match="stop"):
        with VideoWriter(tmp_path / "out.mp4", 25) as writer:
            writer.write(_frames(3))
            raise RuntimeError("stop")
    with pytest.raises(ValueError, match="differs"):
        with VideoWriter(tmp_path / "out.mp4", 25) as writer:
            writer.write(_frames(3))
            writer.write(_frames(3, h=32))
    assert list(tmp_path.iterdir()) == []


def test_lazy_frames_take_numpy_style_keys(tmp_path):
    path = tmp_path / "in.mp4"
    write_video(path, _frames(6), fps=25)
    expected = read_video(path).frames
    frames = read_video(path, lazy=True).frames
    assert np.array_equal(frames[:, 10:, 20:40], expected[:, 10:, 20:40])
    assert np.array_equal(frames[2, 5:9], expected[2, 5:9])
