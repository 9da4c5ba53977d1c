"""What the networks are driven with, checked exactly: the D-Net neutraliser (the e2e test only sees that
outputs differ) and where E-Net's noise comes from.

The network is swapped for a recorder (a named component of the pipeline), so
the stage runs alone in milliseconds and any change to the driving
coefficients (rows, window, template, one-shot source) or the noise source fails here.
"""
from dataclasses import fields

import numpy as np
import pytest
import torch

from talkingface.config import load_config
from talkingface.models.video_retalking import semantic
from talkingface.models.video_retalking.cache import ClipScratch, StageCache
from talkingface.models.video_retalking.parts import Parts
from talkingface.models.video_retalking.pipeline import ClipState, PipelineOptions, VideoReTalkingPipeline

FRAMES = 6


class Recorder:
    """D-Net stand-in: remembers (source, driving) and returns the source (so the output is the input face)."""

    def __init__(self):
        self.sources, self.drives = [], []

    def __call__(self, src, drive):
        self.sources.append(src.clone())
        self.drives.append(drive.clone())
        return src


def _pipeline(tmp_path, dnet, **overrides):
    def unused(*_args, **_kw):
        raise AssertionError("not used by the stabilize stage")
    parts = Parts(**{f.name: unused for f in fields(Parts)})
    parts.dnet = dnet
    config = load_config("video_retalking", None, (), {"weights": "seeded", "device": "cpu", "batch_size": 4,
                                                         "saved_dir": str(tmp_path), **overrides}, with_dataset=False)
    return VideoReTalkingPipeline(parts, PipelineOptions.from_config(config, None))


@pytest.fixture
def clip():
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 255, (FRAMES, 256, 256, 3), dtype=np.uint8)
    coeffs = rng.standard_normal((FRAMES, 262)).astype(np.float32)
    coeffs[:, 259] = 100.0 + np.arange(FRAMES)  # alignment scale differs per frame
    return crops, coeffs


def _stabilize(pipe, crops, coeffs, template, tmp_path):
    state = ClipState(crops, 25.0, StageCache(None, {}), ClipScratch(tmp_path))
    with torch.inference_mode():
        return np.asarray(pipe.stabilize_stage(state, crops, coeffs, template))


def test_every_window_column_carries_the_template_not_the_clip_expression(tmp_path, clip):
    crops, coeffs = clip
    template = np.linspace(-1, 1, 64).astype(np.float32)
    dnet = Recorder()
    out = _stabilize(_pipeline(tmp_path, dnet), crops, coeffs, template, tmp_path)
    drive = torch.cat(dnet.drives).numpy()
    assert drive.shape == (FRAMES, 73, 2 * semantic.WINDOW)  # batches of 4 + 2, every frame once
    assert np.array_equal(drive[:, :64, :], np.broadcast_to(template[None, :, None], (FRAMES, 64, 26)))
    for i in range(FRAMES):
        window = coeffs[semantic.window_indices(i, FRAMES)]
        assert np.array_equal(drive[i, 64:67].T, window[:, semantic.ANGLE])  # the clip's own head pose
        assert np.array_equal(drive[i, 67:70].T, window[:, semantic.TRANS])
        assert np.array_equal(drive[i, 71:73].T, window[:, 260:262])  # crop tx, ty
        ratio = semantic.crop_norm_ratio(coeffs[i:i + 1], coeffs)
        assert np.allclose(drive[i, 70], window[:, 259] * ratio)  # crop scale, normalised to the source
    sources = torch.cat(dnet.sources)
    assert torch.equal(sources, torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(127.5).sub(1.0))
    assert np.abs(out.astype(int) - crops.astype(int)).max() <= 1  # [-1,1] -> uint8 round trip of the source


def test_another_template_changes_only_the_expression_rows(tmp_path, clip):
    crops, coeffs = clip
    drives = {}
    for name, template in (("neutral", np.zeros(64, np.float32)), ("smile", np.full(64, 0.5, np.float32))):
        dnet = Recorder()
        _stabilize(_pipeline(tmp_path, dnet), crops, coeffs, template, tmp_path)
        drives[name] = torch.cat(dnet.drives).numpy()
    assert np.array_equal(drives["neutral"][:, 64:], drives["smile"][:, 64:])
    assert np.all(drives["smile"][:, :64] - drives["neutral"][:, :64] == 0.5)


def test_one_shot_takes_every_source_from_the_first_frame(tmp_path, clip):
    crops, coeffs = clip
    dnet = Recorder()
    _stabilize(_pipeline(tmp_path, dnet, one_shot=True), crops, coeffs, np.zeros(64, np.float32), tmp_path)
    sources = torch.cat(dnet.sources)
    assert len(sources) == FRAMES and all(torch.equal(s, sources[0]) for s in sources)
    assert torch.equal(sources[0], torch.from_numpy(crops[:1]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)[0])
    drive = torch.cat(dnet.drives).numpy()
    assert np.array_equal(drive[3, 64:67].T, coeffs[semantic.window_indices(3, FRAMES)][:, semantic.ANGLE])


def _enet_recorder(seen):
    def enet(mel, img, generator):
        seen.append(generator)
        return torch.zeros(len(mel), 3, 384, 384)
    return enet


@pytest.mark.parametrize("noise", ["fresh", "seeded"])
def test_e_net_noise_comes_from_a_generator_of_the_call_not_the_global_one(tmp_path, noise):
    """``fresh``: the generator the pipeline call owns (shared with GFPGAN); ``seeded``: E-Net's own, from
    ``seed``. Never torch's global generator, whose state the stage leaves alone."""
    seen = []
    pipe = _pipeline(tmp_path, None, noise=noise, batch_size=2, seed=7)
    pipe.parts.enet = _enet_recorder(seen)
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    state = ClipState(frames, 25.0, StageCache(None, {}), ClipScratch(tmp_path))
    boxes = np.array([[0, 64, 0, 64]] * 3)
    refs = np.zeros((3, 384, 384, 3), np.uint8)
    call = torch.Generator().manual_seed(7)
    before = torch.get_rng_state()
    with torch.inference_mode():
        out = list(pipe.lipsync_stage(state, np.zeros((3, 80, 16), np.float32), boxes, refs, call))
    assert [idx for idx, _ in out] == [[0, 1], [2]]
    assert len(seen) == 2 and seen[0] is seen[1]  # one generator for the whole clip
    if noise == "fresh":
        assert seen[0] is call
    else:
        assert seen[0] is not call and seen[0].initial_seed() == 7
    assert torch.equal(before, torch.get_rng_state())
