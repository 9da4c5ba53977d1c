"""lse_protocol: reference reproduces syncnet_python / Wav2Lip's LSE scripts on the same files and weights.

tests/fixtures/eval_reference/reference.json was made by running the (patched) reference tools on the
clips next to it (README there); direct decoding is checked to stay near them.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from talkingface.errors import ConfigError
from talkingface.evaluation.base import EvalItem
from talkingface.evaluation.lse import LSEMetric
from talkingface.evaluation.syncnet import SyncNet
from talkingface.weights.seeded import load_strict, seeded_state_dict

FIXTURES = Path(__file__).parent / "fixtures" / "eval_reference"
REFERENCE = json.loads((FIXTURES / "reference.json").read_text())
FACE = {"lse_crop": "face", "lse_detector": "dlib", "lse_min_track": REFERENCE["meta"]["min_track"],
        "weights": "seeded", "device": "cpu"}
FRAME = {"lse_crop": "frame", "weights": "seeded", "device": "cpu"}


@pytest.fixture(scope="module")
def net():
    """The seeded SyncNet the fixtures were made with (make_seeded_syncnet.py)."""
    with np.load(FIXTURES.parent / "parity" / "SyncNet.seed0.npz") as data:
        overrides = json.loads(str(data["meta"]))["overrides"]
    module = SyncNet()
    load_strict(module, seeded_state_dict(module, 0, overrides), "seeded-v1")
    return module.eval()


def _score(net, config, clip):
    return LSEMetric(config, net=net).update(EvalItem(clip, FIXTURES / "clips" / f"{clip}.mp4"))


@pytest.mark.parametrize("clip", ["face30", "cut"])
def test_face_mode_matches_syncnet_python(net, clip):
    """Tracks, windows, offset, LSE-D and LSE-C of every track as run_pipeline + run_syncnet give them."""
    row = _score(net, {**FACE, "lse_protocol": "reference"}, clip)
    expected = REFERENCE["face"][clip]["tracks"]
    assert row["reason"] is None and len(row["lse_tracks"]) == len(expected)
    for mine, theirs in zip(row["lse_tracks"], expected):
        assert (mine["start"], mine["end"], mine["windows"]) == (theirs["start"], theirs["end"], theirs["windows"])
        assert mine["lse_offset"] == theirs["offset"]
        assert mine["lse_d"] == pytest.approx(theirs["min_dist"], rel=1e-3)
        assert mine["lse_c"] == pytest.approx(theirs["conf"], abs=0.02)
        assert mine["lse_d"] == pytest.approx(theirs["printed_min_dist"], rel=1e-5)  # what the script prints
    # one value per clip: the mean of its tracks
    assert row["lse_d"] == pytest.approx(np.mean([t["min_dist"] for t in expected]), rel=1e-3)


def test_frame_mode_matches_the_lrs2_script(net):
    """calculate_scores_LRS.py: JPEG frames (a 30 fps file read as 25 fps), resized to 224."""
    rows = {clip: _score(net, {**FRAME, "lse_protocol": "reference"}, clip) for clip in ("face25", "face30")}
    for clip, row in rows.items():
        theirs = REFERENCE["frame"]["clips"][clip]
        assert row["lse_offset"] == theirs["offset"]
        assert row["lse_d"] == pytest.approx(theirs["min_dist"], rel=1e-3)
        assert row["lse_c"] == pytest.approx(theirs["conf"], abs=0.02)
    average = REFERENCE["frame"]["script_average"]
    summary = LSEMetric.summarise(list(rows.values()))
    assert summary["lse_d"] == pytest.approx(average["min_dist"], rel=1e-3)
    assert summary["lse_c"] == pytest.approx(average["conf"], abs=0.02)


def test_direct_protocol_stays_near_the_reference(net):
    """direct skips the JPEG/XVID re-encodes: close to the tools, and not the same numbers."""
    theirs = REFERENCE["frame"]["clips"]["face25"]
    row = _score(net, {**FRAME, "lse_protocol": "direct"}, "face25")
    assert row["lse_d"] == pytest.approx(theirs["min_dist"], rel=5e-3) and row["lse_d"] != theirs["min_dist"]
    track = REFERENCE["face"]["face25"]["tracks"][0]
    row = _score(net, {**FACE, "lse_protocol": "direct"}, "face25")
    assert (row["lse_tracks"][0]["start"], row["lse_tracks"][0]["end"]) == (track["start"], track["end"])
    assert row["lse_d"] == pytest.approx(track["min_dist"], rel=0.05) and row["lse_d"] != track["min_dist"]


def test_reference_protocol_needs_ffmpeg_and_says_so(net, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="needs the ffmpeg program") as info:
        LSEMetric({**FRAME, "lse_protocol": "reference"}, net=net)
    assert "--lse_protocol=direct" in info.value.hint
    LSEMetric({**FRAME, "lse_protocol": "direct"}, net=net)  # the lossless path needs no ffmpeg


def test_reference_protocol_on_decoded_frames_gives_a_reason(net):
    from talkingface.media.video import VideoClip

    clip = VideoClip(np.zeros((12, 32, 32, 3), np.uint8), 25.0)
    row = LSEMetric({**FRAME, "lse_protocol": "reference"}, net=net).update(EvalItem("arr", clip))
    assert row["skipped"] and "lse_protocol=direct" in row["reason"]
