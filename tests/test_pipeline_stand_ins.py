"""Seeded stand-ins (one named component), the real S3FD / ParseNet paths, the reference preset, noise.

Seeded S3FD and RetinaFace return hundreds of random boxes and seeded ParseNet
labels at random, so seeded runs put dlib in their place
(:mod:`talkingface.models.video_retalking.stand_ins`); ``seeded_stand_ins``
turns each off, and then the real (seeded) network's output flows through the
pipeline.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.config import load_config
from talkingface.face import boxes as face_boxes_mod
from talkingface.face import dlib_detect, gfpgan, load_net, parsing, s3fd
from talkingface.media import load_audio, read_video, write_video, write_wav
from talkingface.models.video_retalking.options import REFERENCE_PRESET, PipelineOptions
from talkingface.weights.policy import choose_weights

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"
CHEAP = {"landmarks": "dlib", "enhancer": "none", "compose": "box"}


def _pipeline(tmp_path, **overrides):
    from talkingface.models.video_retalking.model import VideoReTalking
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline

    values = {"weights": "seeded", "device": "cpu", "batch_size": 2, "saved_dir": str(tmp_path / "saved"),
              "max_seconds": None, **overrides}
    config = load_config("video_retalking", "video-retalking", (), values)
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    return VideoReTalkingPipeline.from_config(config, weights)


@pytest.fixture(scope="module")
def frames():
    return read_video(SAMPLE / "astronaut_a.mp4").frames[:4]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames):
    root = tmp_path_factory.mktemp("clip")
    write_video(root / "face.mp4", frames[:2], 25)
    write_wav(root / "a.wav", load_audio(SAMPLE / "astronaut_b.wav")[8000: 8000 + 3200])
    return root / "face.mp4", root / "a.wav"


def test_stand_ins_replace_only_what_they_name_and_say_so(frames, caplog):
    from talkingface.weights.manifest import checkpoint_path
    from talkingface.face.landmark_parsing import LandmarkParser
    from talkingface.face.landmarks import DlibLandmarks
    from talkingface.face.dlib_detect import DlibFivePointDetector
    from talkingface.models.video_retalking.stand_ins import SeededStandIns

    predictor = checkpoint_path("dlib_landmarks")
    net = load_net(s3fd.S3FD(), name="s3fd", weights="seeded")
    real = s3fd.S3FDDetector(net, "cpu")
    assert len(real.detect(frames[:1])[0]) > 50  # seeded S3FD: many random boxes
    with caplog.at_level(logging.WARNING):
        stand_ins = SeededStandIns(["boxes", "five_points", "parsing"], predictor)
        boxes = stand_ins.boxes(real).detect(frames[:2])
        points = stand_ins.five_points(lambda im: (np.zeros((0, 5)), np.zeros((0, 5, 2))), "RetinaFace")
        labels = stand_ins.parser(lambda im: np.zeros(im.shape[:2], np.int64))(frames[0])
    assert [len(b) for b in boxes] == [1, 1]
    assert np.allclose(boxes[0], dlib_detect.DlibBoxDetector().detect(frames[0]))
    assert np.array_equal(points(frames[0])[1], DlibFivePointDetector(predictor)(frames[0])[1])
    assert np.array_equal(labels, LandmarkParser(DlibLandmarks(predictor))(frames[0]))
    assert stand_ins.counts["boxes"] == 1 and stand_ins.counts["parsing"] == 1
    assert caplog.text.count("seeded stand-in 'boxes'") == 1  # logged once, counted always
    # where dlib finds no face (noise painted over it), the caller's box places the predictor
    noise = np.random.default_rng(0).integers(0, 255, frames[0].shape, dtype=np.uint8)
    points.hint = (60, 60, 200, 220)
    found_boxes, found_points = points(noise)
    assert found_boxes[0, :4].tolist() == [60, 60, 200, 220] and found_points.shape == (1, 5, 2)
    # an empty list leaves every network's own output
    none = SeededStandIns([], predictor)
    assert none.boxes(real) is real


def test_real_seeded_s3fd_boxes_reach_the_pipeline(tmp_path, frames):
    """``seeded_stand_ins`` without ``boxes``: the pipeline's face boxes are the seeded S3FD's own."""
    from talkingface.models.video_retalking.cache import ClipScratch, StageCache
    from talkingface.models.video_retalking.pipeline import ClipState

    pipe = _pipeline(tmp_path, seeded_stand_ins=["five_points", "parsing"], **CHEAP)
    state = ClipState(frames, 25.0, StageCache(None, {}), ClipScratch(tmp_path))
    boxes = pipe.face_boxes_stage(state)
    net = load_net(s3fd.S3FD(), name="s3fd", weights="seeded")
    detector = s3fd.S3FDDetector(net, "cpu", channel_order="rgb")  # the L-Net box path: the net sees RGB
    expected, _ = face_boxes_mod.face_boxes(frames, detector, pads=(0, 20, 0, 0))
    assert np.array_equal(boxes, expected)
    stand_in = _pipeline(tmp_path, **CHEAP).face_boxes_stage(state)
    assert not np.array_equal(boxes, stand_in)  # dlib's boxes differ from the random ones


def test_a_run_with_the_real_parsenet_output(tmp_path, clip, caplog):
    pipe = _pipeline(tmp_path, seeded_stand_ins=["boxes", "five_points"], **CHEAP)
    with caplog.at_level(logging.WARNING):
        out = pipe(face=clip[0], audio=clip[1], outfile=tmp_path / "real.mp4")
    counts = pipe.parts.stand_ins.counts
    assert "parsing" not in counts and counts["boxes"] > 0
    said = [r.getMessage() for r in caplog.records if "seeded stand-ins used" in r.getMessage()]
    used = ", ".join(f"{k} x{v}" for k, v in counts.items() if v)
    assert said == [f"seeded stand-ins used for real.mp4: {used}"] and "parsing" not in said[0]
    face = read_video(clip[0]).frames[0][40:220, 50:210]
    net = parsing.load_parsenet(weights="seeded")
    assert np.array_equal(pipe.parts.parse_labels(face), parsing.parse_labels(net, face))
    substituted = _pipeline(tmp_path, **CHEAP)
    other = substituted(face=clip[0], audio=clip[1], outfile=tmp_path / "stand_in.mp4")
    assert substituted.parts.stand_ins.counts["parsing"] > 0
    a, b = read_video(out).frames, read_video(other).frames
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 0.1  # other mouth masks


def test_reference_preset_sets_its_keys_and_says_which(caplog):
    config = load_config("video_retalking", None, (), {"compat": "reference", "face_select": "largest",
                                                      "compose": "box", "noise": "seeded", "device": "cpu"})
    with caplog.at_level(logging.WARNING):
        options = PipelineOptions.from_config(config)
    for key, value in REFERENCE_PRESET.items():
        assert getattr(options, key) == value
    assert "compat=reference sets face_select=None (was 'largest' from command line)" in caplog.text
    assert "compose='official'" in caplog.text and "noise='fresh'" in caplog.text
    default = PipelineOptions.from_config(load_config("video_retalking", None, (), {"device": "cpu"}))
    differs = {k for k, v in REFERENCE_PRESET.items() if getattr(default, k) != v}
    assert differs == {"noise"}  # the defaults are the official pipeline but for seeded noise


def test_the_preflight_look_at_the_options_does_not_repeat_the_preset_warnings(caplog):
    """The pre-flight asks the model which files it loads; only the build that uses the options warns."""
    from talkingface.models.video_retalking.model import VideoReTalking

    config = load_config("video_retalking", None, (), {"compat": "reference", "face_select": "largest"})
    with caplog.at_level(logging.INFO):
        names = VideoReTalking.required_checkpoints(config)
    assert "gfpgan_detection" in names  # the preset's files: facexlib RetinaFace for GFPGAN
    assert "compat=reference" not in caplog.text
    with caplog.at_level(logging.INFO):
        PipelineOptions.from_config(config, resolve_device=False)
    assert caplog.text.count("compat=reference sets face_select") == 1


def test_gfpgan_noise_fresh_seeded_stored():
    from talkingface.face import restore

    net = gfpgan.load_gfpgan(weights="seeded", size=64, narrow=0.125, num_style_feat=64)
    face = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)

    def restorer(noise, seed=0):
        generator = torch.Generator().manual_seed(seed) if noise == "seeded" else None
        return restore.GFPGANRestorer(net, lambda im: None, noise=noise, generator=generator)

    fresh = restorer("fresh")
    assert not np.array_equal(fresh.restore_aligned(face), fresh.restore_aligned(face))  # new noise every call
    seeded_a, seeded_b = restorer("seeded"), restorer("seeded")
    first = seeded_a.restore_aligned(face)
    assert np.array_equal(first, seeded_b.restore_aligned(face))  # same seed, same draws
    assert not np.array_equal(first, seeded_a.restore_aligned(face))  # but fresh noise on each call
    stored = restorer("stored")
    assert np.array_equal(stored.restore_aligned(face), stored.restore_aligned(face))
