"""End to end VideoReTalking on the bundled sample: seeded networks, dlib stand-ins where they cannot work.

Frames are few (CPU cost is ~5-10 s per frame) but every stage runs for real.
"""
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkingface.config import load_config
from talkingface.media import load_audio, read_video, write_video, write_wav
from talkingface.weights.policy import choose_weights

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"
FRAMES = 2


def _pipeline(tmp_path, **overrides):
    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline

    values = {"weights": "seeded", "device": "cpu", "batch_size": FRAMES, "saved_dir": str(tmp_path / "saved"),
              "max_seconds": None, **overrides}
    config = load_config("video_retalking", "video-retalking", (), values)
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    return VideoReTalkingPipeline.from_config(config, weights)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first frames of a sample clip, with the speech of another clip of the same length."""
    root = tmp_path_factory.mktemp("clip")
    clip = read_video(SAMPLE / "astronaut_a.mp4")
    video = root / "face.mp4"
    write_video(video, clip.frames[:FRAMES], 25)
    speech = load_audio(SAMPLE / "astronaut_b.wav")
    audio = root / "speech.wav"
    write_wav(audio, speech[8000: 8000 + FRAMES * 640])
    return video, audio


@pytest.fixture(scope="module")
def full_run(short_clip, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    pipe = _pipeline(tmp)
    out = pipe(face=short_clip[0], audio=short_clip[1], outfile=tmp / "out.mp4")
    return pipe, out, tmp


def test_default_run_is_the_official_pipeline(short_clip, full_run):
    from talkingface.models.video_retalking.options import checkpoint_names

    pipe, out, _ = full_run
    result = read_video(out)
    assert result.fps == 25 and result.num_frames == FRAMES  # 0.08 s of audio: padded to one mel window
    assert sorted(pipe.parts.files.used) == sorted(checkpoint_names(pipe.options))  # pre-flight == loaded
    counts = pipe.parts.stand_ins.counts
    assert counts["boxes"] > 0 and counts["five_points"] > 0 and counts["parsing"] > 0  # seeded stand-ins logged
    source = read_video(short_clip[0]).frames
    y1, y2, x1, x2 = pipe_boxes(pipe, source)[0]
    mouth = (slice((y1 + y2) // 2, y2), slice(x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4))
    assert np.abs(result.frames[0].astype(int) - source[0].astype(int))[mouth].mean() > 5.0


def test_compose_box_leaves_the_background_untouched(short_clip, tmp_path):
    pipe = _pipeline(tmp_path, compose="box")
    out = pipe(face=short_clip[0], audio=short_clip[1], outfile=tmp_path / "out.mp4")
    source = read_video(short_clip[0]).frames
    result = read_video(out)
    assert result.fps == 25 and result.num_frames == FRAMES
    assert abs(len(load_audio(out)) - FRAMES * 640) <= 640
    boxes = pipe_boxes(pipe, source)
    outside = np.ones(source.shape[:3], bool)
    for i, (y1, y2, x1, x2) in enumerate(boxes):
        dy, dx = (y2 - y1) // 4 + 2, (x2 - x1) // 4 + 2
        outside[i, max(0, y1 - dy): y2 + dy, max(0, x1 - dx): x2 + dx] = False
    diff = np.abs(result.frames.astype(int) - source.astype(int))
    assert diff[outside].mean() < 2.0  # codec noise only
    y1, y2, x1, x2 = boxes[0]
    mouth = (slice((y1 + y2) // 2, y2), slice(x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4))
    assert diff[0][mouth].mean() > 5.0  # the mouth was regenerated
    assert set(pipe.timings) >= {"crop", "landmarks", "coeffs", "stabilize", "face_boxes", "lipsync", "compose"}


def pipe_boxes(pipe, frames):
    boxes, _ = pipe.parts.face_boxes(frames, pipe.options.pads, pipe.options.nosmooth)
    return np.asarray(boxes)


def test_second_run_uses_the_stage_cache(short_clip, full_run, caplog):
    pipe, out, tmp = full_run
    caplog.set_level(logging.INFO)
    again = pipe(face=short_clip[0], audio=short_clip[1], outfile=tmp / "again.mp4")
    assert "stage cache: reused crop, landmarks, coeffs, stabilize" in caplog.text
    assert "stabilize" not in pipe.timings  # not computed the second time
    assert np.array_equal(read_video(out).frames, read_video(again).frames)


def test_expression_option_changes_the_output(short_clip, tmp_path):
    pipe = _pipeline(tmp_path, enhancer="none")
    neutral = read_video(pipe(face=short_clip[0], audio=short_clip[1], outfile=tmp_path / "n.mp4")).frames
    pipe = _pipeline(tmp_path, enhancer="none", expression="smile")
    smile = read_video(pipe(face=short_clip[0], audio=short_clip[1], outfile=tmp_path / "s.mp4")).frames
    assert np.abs(neutral.astype(int) - smile.astype(int)).mean() > 0.05


def test_static_image_and_longer_audio(tmp_path):
    frame = read_video(SAMPLE / "astronaut_c.mp4").frames[0]
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), frame[:, :, ::-1])
    speech = load_audio(SAMPLE / "astronaut_a.wav")[: 4000]  # 21 mel frames: windows at 0, 3 and the last
    write_wav(tmp_path / "a.wav", speech)
    pipe = _pipeline(tmp_path, enhancer="none", batch_size=3)
    out = read_video(pipe(face=image, audio=tmp_path / "a.wav", outfile=tmp_path / "o.mp4"))
    assert out.num_frames == 3 and out.fps == 25  # one frame per mel window; the still face is reused


def test_30fps_input_keeps_its_rate_unless_resampled(tmp_path):
    clip = read_video(SAMPLE / "astronaut_a.mp4", fps=None)
    write_video(tmp_path / "f30.mp4", clip.frames[:4], 30)  # 4 frames at 30 fps
    write_wav(tmp_path / "a.wav", load_audio(SAMPLE / "astronaut_b.wav")[: 4000])  # 21 mel frames
    pipe = _pipeline(tmp_path, enhancer="none")
    pipe(face=tmp_path / "f30.mp4", audio=tmp_path / "a.wav", outfile=tmp_path / "o.mp4")
    assert pipe.last_clip_frames == 4  # the official keeps the input rate
    out = read_video(tmp_path / "o.mp4", fps=None)
    assert out.fps == pytest.approx(30) and out.num_frames == 4  # mel windows at 0, 2, 5 and the last (5 again)
    pipe = _pipeline(tmp_path, enhancer="none", resample_fps=True)
    pipe(face=tmp_path / "f30.mp4", audio=tmp_path / "a.wav", outfile=tmp_path / "r.mp4")
    assert pipe.last_clip_frames == 3  # 4/30 s at 25 fps (nearest-frame resampling)
    out = read_video(tmp_path / "r.mp4", fps=None)
    assert out.fps == pytest.approx(25) and out.num_frames == 3


def test_shorter_audio_cuts_the_output_and_leaves_no_scratch(tmp_path):
    clip = read_video(SAMPLE / "astronaut_b.mp4")
    write_video(tmp_path / "face.mp4", clip.frames[:4], 25)
    write_wav(tmp_path / "a.wav", load_audio(SAMPLE / "astronaut_c.wav")[4000: 4000 + 2 * 640])
    pipe = _pipeline(tmp_path, enhancer="none")
    out = pipe(face=tmp_path / "face.mp4", audio=tmp_path / "a.wav", outfile=tmp_path / "o.mp4")
    assert pipe.last_clip_frames == 4
    result = read_video(out)
    assert result.num_frames == 2  # the output follows the audio
    assert pipe.last_output_frames == 2  # what benchmarks divide by (per output second), not the 4 read
    assert abs(len(load_audio(out)) - 2 * 640) <= 640
    cache_root = tmp_path / "saved" / "cache"
    assert not list(cache_root.glob(".scratch-*"))  # decoded frames and stage arrays were removed
    assert not list(cache_root.rglob("*.tmp*")) and not list(cache_root.glob("*/.*"))  # no half-written entries
