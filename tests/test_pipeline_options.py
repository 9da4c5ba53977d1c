"""Each reference option changes what its stage computes (the reference has options that silently do nothing).

The stages run alone on a few real sample frames, seeded networks and real dlib
faces, so each option's effect is checked where it acts, in seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.config import load_config
from talkingface.media import read_video, write_video
from talkingface.models.video_retalking.cache import ClipScratch, StageCache
from talkingface.models.video_retalking.pipeline import IMG_SIZE, ClipState, VideoReTalkingPipeline
from talkingface.weights.policy import choose_weights

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from talkingface.models.video_retalking.model import VideoReTalking

    tmp = tmp_path_factory.mktemp("options")
    config = load_config("video_retalking", "video-retalking", (), {
        "weights": "seeded", "device": "cpu", "batch_size": 2, "enhancer": "none", "max_seconds": None,
        "saved_dir": str(tmp / "saved")})
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    return VideoReTalkingPipeline.from_config(config, weights)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "face.mp4"
    write_video(path, read_video(SAMPLE / "astronaut_a.mp4").frames[:12], 25)
    return path


def _state(frames: np.ndarray, tmp_path: Path) -> ClipState:
    return ClipState(frames, 25.0, StageCache(None, {}), ClipScratch(tmp_path))


def test_crop_cuts_the_decoded_frames(pipe, clip, tmp_path, monkeypatch):
    full, _ = pipe.read(clip)
    monkeypatch.setattr(pipe.options, "crop", (10, -1, 20, 200))
    cut, _ = pipe.read(clip)
    assert cut.shape == (full.shape[0], full.shape[1] - 10, 180, 3)
    assert np.array_equal(cut, full[:, 10:, 20:200])


def test_pads_and_nosmooth_change_the_face_boxes(pipe):
    first = read_video(SAMPLE / "astronaut_a.mp4").frames[0]
    frames = np.stack([np.roll(first, 16 * (i % 2), axis=1) for i in range(8)])  # the head jumps every frame
    base, _ = pipe.parts.face_boxes(frames, (0, 0, 0, 0), True)
    padded, _ = pipe.parts.face_boxes(frames, (5, 20, 3, 7), True)
    height, width = frames.shape[1:3]
    expected = np.stack([np.maximum(0, base[:, 0] - 5), np.minimum(height, base[:, 1] + 20),
                         np.maximum(0, base[:, 2] - 3), np.minimum(width, base[:, 3] + 7)], 1)
    assert np.array_equal(padded, expected)
    smoothed, _ = pipe.parts.face_boxes(frames, (0, 0, 0, 0), False)
    assert not np.array_equal(smoothed, base)  # the head moves: a 5-frame mean differs from raw boxes
    assert np.ptp(smoothed[2:6, 2]) < np.ptp(base[2:6, 2]) / 2  # the jumps are averaged out


def test_one_shot_drives_every_frame_from_the_first(pipe, tmp_path):
    crops = read_video(SAMPLE / "astronaut_b.mp4").frames[:2, :256, :256].copy()
    crops[1] = np.roll(crops[0], 12, axis=1)  # a second frame that looks different
    coeffs = np.zeros((2, 262), np.float32)
    coeffs[:, 259] = 100.0  # alignment scale (ratio = 1)
    expression = np.zeros(64, np.float32)
    outs = {}
    for one_shot in (False, True):
        pipe.options.one_shot = one_shot
        try:
            with torch.inference_mode():
                outs[one_shot] = np.asarray(pipe.stabilize_stage(_state(crops, tmp_path), crops, coeffs,
                                                                 expression))
        finally:
            pipe.options.one_shot = False
    assert np.array_equal(outs[False][0], outs[True][0])  # frame 0 is its own source either way
    assert np.abs(outs[False][1].astype(int) - outs[True][1].astype(int)).mean() > 1.0
    assert np.array_equal(outs[True][1], outs[True][0])  # one-shot: same source, same driving -> same face


def test_without_rl1_keeps_the_upper_half_of_the_input_face(pipe, tmp_path):
    frames = read_video(SAMPLE / "astronaut_c.mp4").frames[:1]
    boxes = np.array([[40, 240, 60, 220]])
    refs = np.stack([np.full((IMG_SIZE, IMG_SIZE, 3), 128, np.uint8)])
    chunks = np.random.default_rng(0).standard_normal((1, 80, 16)).astype(np.float32)
    preds = {}
    for flag in (False, True):
        pipe.options.without_rl1 = flag
        try:
            with torch.inference_mode():
                [(idx, pred)] = list(pipe.lipsync_stage(_state(frames, tmp_path), chunks, boxes, refs))
        finally:
            pipe.options.without_rl1 = False
        preds[flag] = pred[0].astype(int)
    import cv2

    face = cv2.resize(frames[0][40:240, 60:220], (IMG_SIZE, IMG_SIZE)).astype(int)
    upper = slice(0, IMG_SIZE // 2)
    # the input shows through (uint8 rounding), except where it is exactly 0: the reference's hole
    # mask is `masked input == 0`, so pure-black input pixels count as hole and keep E-Net's value
    lit = face[upper] > 0
    assert lit.mean() > 0.9 and np.abs(preds[True][upper] - face[upper])[lit].max() <= 1
    assert np.abs(preds[False][upper] - face[upper]).mean() > 5  # E-Net's own upper half differs
    assert np.array_equal(preds[True][IMG_SIZE // 2:], preds[False][IMG_SIZE // 2:])  # the mouth is E-Net's


def test_re_preprocess_empties_the_clip_cache(pipe, clip, monkeypatch):
    cache = pipe.open_cache(clip)
    cache.save("crop", {}, {"box": np.arange(4)})
    assert pipe.open_cache(clip).load("crop", {}) is not None  # a normal run reuses it
    monkeypatch.setattr(pipe.options, "re_preprocess", True)
    fresh = pipe.open_cache(clip)
    assert fresh.load("crop", {}) is None and not cache.folder.exists()
    monkeypatch.setattr(pipe.options, "re_preprocess", False)
    monkeypatch.setattr(pipe.options, "fps", 30.0)  # a clip option is part of the key
    assert pipe.open_cache(clip).key != cache.key
