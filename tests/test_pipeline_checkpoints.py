"""``checkpoint_dir`` reaches every loader, and the pre-flight list is exactly what the builder loads.

The pipeline runs from a checkpoint folder in a temporary directory outside the
repository, with no environment variable and a working directory without
``./checkpoints``; the files it reads (expression templates, the 3DMM template,
dlib's predictor) must be that folder's.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from talkingface.config import load_config
from talkingface.errors import CheckpointError
from talkingface.media import load_audio, read_video, write_video, write_wav
from talkingface.models.video_retalking.model import VideoReTalking
from talkingface.models.video_retalking.options import PipelineOptions, checkpoint_names
from talkingface.weights.policy import choose_weights

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "dataset" / "video-retalking"
CHEAP = {"landmarks": "dlib", "face_detector": "dlib", "enhancer": "none", "compose": "box"}


def _config(**values):
    return load_config("video_retalking", "video-retalking", (), {"device": "cpu", **values})


def test_preflight_list_follows_the_options():
    default = VideoReTalking.required_checkpoints(_config())
    assert default == ["dnet", "lnet", "enet", "face3d", "bfm", "expression", "dlib_landmarks", "s3fd", "fan",
                       "parsenet", "gpen", "retinaface", "gfpgan", "gfpgan_detection"]
    assert "gfpgan_parsing" not in default  # loaded by GFPGANer but unused there (use_parse=False)
    cheap = VideoReTalking.required_checkpoints(_config(**CHEAP))
    assert cheap == ["dnet", "lnet", "enet", "face3d", "bfm", "expression", "dlib_landmarks", "parsenet"]
    # the official compose needs GPEN's RetinaFace even without the enhancer
    assert VideoReTalking.required_checkpoints(_config(enhancer="none")) == [
        "dnet", "lnet", "enet", "face3d", "bfm", "expression", "dlib_landmarks", "s3fd", "fan", "parsenet",
        "retinaface"]
    image = VideoReTalking.required_checkpoints(_config(**CHEAP, expression=str(SAMPLE / "face.png")))
    assert "expression" not in image  # an expression image needs no expression.mat
    only_boxes = VideoReTalking.required_checkpoints(_config(**{**CHEAP, "face_detector": "s3fd"}))
    assert only_boxes == cheap[:-1] + ["s3fd", "parsenet"]


def test_reference_preset_sets_the_official_files():
    names = VideoReTalking.required_checkpoints(_config(compat="reference", **CHEAP))
    assert names == VideoReTalking.required_checkpoints(_config())


def _checkpoint_folder(root: Path) -> tuple[Path, np.ndarray]:
    """A folder with the data files the pipeline reads even with seeded networks."""
    from talkingface.weights.manifest import fallback_path, get_spec

    root.mkdir(parents=True)
    template = np.linspace(-0.3, 0.3, 64, dtype=np.float32)
    savemat(root / "expression.mat", {"expression_center": template[None], "expression_mouth": -template[None]})
    (root / "BFM").mkdir()
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    lm = np.stack([np.cos(angles) * 0.6, np.sin(angles) * 0.8, np.zeros(68)], 1)
    savemat(root / "BFM" / "similarity_Lm3D_all.mat", {"lm": lm})
    predictor = fallback_path(get_spec("dlib_landmarks"))
    if predictor is None:
        pytest.skip("dlib's 68-point predictor (face_recognition_models) is not installed")
    os.symlink(predictor, root / "shape_predictor_68_face_landmarks.dat")
    return root, template


def test_pipeline_runs_from_a_folder_outside_the_repository(tmp_path, monkeypatch, caplog):
    from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline

    assert REPO not in tmp_path.parents
    folder, template = _checkpoint_folder(tmp_path / "weights")
    monkeypatch.delenv("TALKINGFACE_CHECKPOINTS", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # no ./checkpoints here
    clip = read_video(SAMPLE / "astronaut_a.mp4")
    write_video(work / "face.mp4", clip.frames[:2], 25)
    write_wav(work / "a.wav", load_audio(SAMPLE / "astronaut_b.wav")[8000: 8000 + 3200])
    config = _config(weights="seeded", checkpoint_dir=str(folder), saved_dir=str(work / "saved"), batch_size=2,
                     max_seconds=None, **CHEAP)
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    caplog.set_level(logging.INFO)
    pipe = VideoReTalkingPipeline.from_config(config, weights)
    out = pipe(face=work / "face.mp4", audio=work / "a.wav", outfile=work / "out.mp4")
    assert read_video(out).num_frames == 2
    # the builder asked for exactly the pre-flight files, each from the configured folder
    options = PipelineOptions.from_config(config, weights)
    assert sorted(pipe.parts.files.used) == sorted(checkpoint_names(options))
    assert pipe.parts.files.root == folder
    for name in ("expression", "bfm", "dlib_landmarks"):
        assert pipe.parts.files.path(name).parent == folder
    assert np.allclose(pipe.expression_stage(), template)  # the folder's expression.mat, not a seeded one
    assert "SEEDED template" not in caplog.text and "built-in approximate" not in caplog.text


def test_official_weights_missing_from_the_folder_stop_before_any_work(tmp_path, monkeypatch):
    folder, _ = _checkpoint_folder(tmp_path / "weights")
    monkeypatch.delenv("TALKINGFACE_CHECKPOINTS", raising=False)
    config = _config(checkpoint_dir=str(folder), **CHEAP)
    with pytest.raises(CheckpointError) as info:
        choose_weights("official", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"])
    message = info.value.message
    assert str(folder) in message
    for filename in ("DNet.pt", "LNet.pth", "ENet.pth", "face3d_pretrain_epoch_20.pth", "ParseNet-latest.pth"):
        assert filename in message
    for present in ("expression.mat", "BFM", "shape_predictor_68_face_landmarks.dat", "GPEN-BFR-512.pth"):
        assert f"- {present} " not in message  # present, or not needed with these options
