"""One model object for ``infer`` and the runner: built once, named swappable components, one call per output."""
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from talkingface import registry
from talkingface.config import load_config
from talkingface.data.base import Pair
from talkingface.errors import NoFaceError
from talkingface.media import read_video, write_video, write_wav
from talkingface.models.video_retalking.model import VideoReTalking
from talkingface.models.video_retalking.parts import Parts
from talkingface.models.video_retalking.pipeline import PipelineOptions, VideoReTalkingPipeline
from talkingface.weights.policy import choose_weights

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"


def _config(tmp_path, **overrides):
    return load_config("video_retalking", None, (), {"weights": "seeded", "device": "cpu",
                                                      "saved_dir": str(tmp_path / "saved"), **overrides},
                       with_dataset=False)


def test_networks_on_demand_fails_on_a_faceless_clip_before_loading_them(tmp_path):
    config = _config(tmp_path)
    weights = choose_weights("seeded", VideoReTalking.required_checkpoints(config), config["checkpoint_dir"], 0)
    model = VideoReTalking.from_config(config, weights, networks_on_demand=True)
    write_video(tmp_path / "blank.mp4", np.full((4, 96, 96, 3), 90, np.uint8), 25)
    write_wav(tmp_path / "a.wav", np.zeros(6400, np.float32))
    start = time.perf_counter()
    with pytest.raises(NoFaceError):
        model(tmp_path / "blank.mp4", tmp_path / "a.wav", tmp_path / "out.mp4")
    assert time.perf_counter() - start < 15  # the networks (~20 s) were never loaded
    assert not model.pipeline.networks_loaded
    assert not (tmp_path / "out.mp4").exists()


def _stub_parts(**given):
    def unused(*_args, **_kw):
        raise AssertionError("this component should not run")
    names = [f.name for f in fields(Parts)]
    return Parts(**{name: given.get(name, unused) for name in names})


def test_components_are_named_and_swappable(tmp_path):
    options = PipelineOptions.from_config(_config(tmp_path), None)
    enhance = lambda image: image  # noqa: E731
    pipe = VideoReTalkingPipeline(_stub_parts(), options)
    assert {"crop", "landmarks", "dnet", "enet", "enhance_face", "restore", "face_blend"} <= set(pipe.components)
    swapped = pipe.swap(enhance_face=enhance)
    assert swapped.components["enhance_face"] is enhance and pipe.components["enhance_face"] is not enhance
    assert swapped.options is pipe.options and swapped.components["enet"] is pipe.components["enet"]
    with pytest.raises(ValueError, match="unknown component"):
        pipe.swap(enhancer=enhance)


def test_lazy_pipeline_builds_its_parts_once(tmp_path):
    calls = []

    def loader():
        calls.append(1)
        return _stub_parts()
    pipe = VideoReTalkingPipeline(None, PipelineOptions.from_config(_config(tmp_path), None), loader=loader,
                                  crop=lambda frames, out: (out, (0, 1, 0, 1), np.zeros(4)))
    assert not pipe.networks_loaded and calls == []
    pipe.crop_part()  # the crop alone never loads the networks
    assert calls == []
    assert pipe.parts is pipe.parts and calls == [1]
    assert pipe.networks_loaded
    with pytest.raises(ValueError, match="parts or a loader"):
        VideoReTalkingPipeline(None, pipe.options)


def test_every_model_has_the_same_interface(tmp_path):
    """The runner (generate_item) and infer call what every registered model has: from_config + call."""
    config = load_config("identity", "video-retalking", (), {"saved_dir": str(tmp_path)})
    model = registry.get("model", "identity").from_config(config, None)
    video, audio = SAMPLE / "astronaut_a.mp4", SAMPLE / "astronaut_b.mp4"
    out = model(video, audio, tmp_path / "direct.mp4")
    assert out == tmp_path / "direct.mp4" and read_video(out).num_frames > 0
    record = model.generate(Pair("p", "astronaut_a", "astronaut_b", video, audio, False), audio,
                            tmp_path / "via_generate.mp4")
    assert record["generated_video"] == tmp_path / "via_generate.mp4" and record["real_video"] == video
    assert np.array_equal(read_video(out).frames, read_video(record["generated_video"]).frames)
    for name in ("identity", "video_retalking"):
        cls = registry.get("model", name)
        assert callable(cls.from_config) and callable(cls.__call__) and callable(cls.generate)


def test_from_pretrained_takes_a_checkpoint_folder(tmp_path):
    from talkingface.errors import CheckpointError

    folder = tmp_path / "ckpt"
    folder.mkdir()
    model = VideoReTalking.from_pretrained(folder, weights="seeded", enhancer="none", device="cpu")
    assert model.config["checkpoint_dir"] == str(folder) and model.config["enhancer"] == "none"
    assert model.weights.seeded and model._pipeline is None  # nothing loaded until the first call
    with pytest.raises(CheckpointError, match="DNet.pt"):
        VideoReTalking.from_pretrained(folder, weights="official")
