"""SyncNet / LSE parity with syncnet_python + Wav2Lip's scoring (fixtures from the reference code)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.errors import CheckpointError
from talkingface.evaluation.base import EvalItem
from talkingface.evaluation.lse import LSEMetric, embed_windows, num_windows, score_embeddings, sync_score
from talkingface.evaluation.lse_crop import frame_crops
from talkingface.evaluation.syncnet import SyncNet, load_syncnet, syncnet_mfcc, to_int16_scale
from talkingface.media.video import VideoClip
from talkingface.weights.seeded import load_strict, seeded_state_dict

PARITY = Path(__file__).parent / "fixtures" / "parity"


@pytest.fixture(scope="module")
def fixture():
    data = np.load(PARITY / "SyncNet.seed0.npz")
    return {k: data[k] for k in data.files} | {"meta": json.loads(str(data["meta"]))}


@pytest.fixture(scope="module")
def net(fixture):
    module = SyncNet()
    load_strict(module, seeded_state_dict(module, 0, fixture["meta"]["overrides"]), "seeded-v1")
    return module.eval()


def test_state_dict_layout_is_the_reference_one():
    keys = json.loads((PARITY / "SyncNet.keys.json").read_text())
    mine = {k: list(v.shape) for k, v in SyncNet().state_dict().items()}
    assert list(mine) == list(keys)
    assert mine == keys


def test_mfcc_matches_reference(fixture):
    mfcc = syncnet_mfcc(fixture["audio_int16"])
    assert mfcc.shape == fixture["mfcc"].shape == (13, mfcc.shape[1])
    np.testing.assert_allclose(mfcc, fixture["mfcc"], atol=1e-9)


def test_int16_scaling_matches_a_16bit_wav():
    audio = np.array([0.0, 0.5, -1.0, 1.0, 1 / 32768, -0.25], np.float32)
    np.testing.assert_array_equal(to_int16_scale(audio), [0, 16384, -32768, 32767, 1, -8192])


def test_embeddings_distances_and_scores_match_reference(fixture, net):
    crops = frame_crops(fixture["frames_rgb"])  # LRS2 'frame' mode: whole frame -> 224
    windows = num_windows(len(crops), len(fixture["audio_int16"]))
    assert windows == fixture["lip_emb"].shape[0] == 10
    lip, aud = embed_windows(net, crops, syncnet_mfcc(fixture["audio_int16"]), windows, batch_size=3)
    np.testing.assert_allclose(lip.numpy(), fixture["lip_emb"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(aud.numpy(), fixture["aud_emb"], atol=1e-4, rtol=0)
    result = score_embeddings(lip, aud, vshift=15)
    np.testing.assert_allclose(result.dists, fixture["dists"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.mdist, fixture["mdist"], atol=1e-4, rtol=0)
    assert result.offset == int(fixture["offset"])
    assert result.lse_d == pytest.approx(float(fixture["lse_d"]), abs=1e-4)
    assert result.lse_c == pytest.approx(float(fixture["lse_c"]), abs=1e-4)
    assert result.lse_c > 1.0  # an informative curve, not a degenerate one


def test_metric_end_to_end_on_decoded_media(fixture, net):
    """The registered metric on the fixture's frames and audio gives the reference's numbers."""
    metric = LSEMetric({"lse_crop": "frame", "lse_protocol": "direct"}, net=net)  # decoded frames: direct
    clip = VideoClip(fixture["frames_rgb"], 25.0)
    audio = fixture["audio_int16"].astype(np.float32) / 32768.0
    out = metric.update(EvalItem("parity", clip, audio=audio))
    assert out["skipped"] is False and out["reason"] is None
    assert out["lse_d"] == pytest.approx(float(fixture["lse_d"]), abs=1e-4)
    assert out["lse_c"] == pytest.approx(float(fixture["lse_c"]), abs=1e-4)
    assert out["lse_offset"] == int(fixture["offset"])
    agg = metric.compute()
    assert agg["lse_n"] == 1 and agg["lse_d"] == pytest.approx(out["lse_d"]) and agg["lse_d_std"] == 0.0
    np.testing.assert_allclose(metric.curves["parity"], fixture["mdist"], atol=1e-4)


def test_offset_sign_convention_matches_reference():
    data = np.load(PARITY / "SyncNetOffset.seed0.npz")
    result = score_embeddings(data["lip_emb"], data["aud_emb"], vshift=15)
    np.testing.assert_allclose(result.dists, data["dists"], atol=1e-5)
    np.testing.assert_allclose(result.mdist, data["mdist"], atol=1e-5)
    assert result.offset == int(data["offset"]) == 3  # audio window i carries video window i+3
    assert result.lse_d == pytest.approx(float(data["lse_d"]), abs=1e-5)
    assert result.lse_c == pytest.approx(float(data["lse_c"]), abs=1e-5)


def test_short_and_silent_audio_are_skipped_with_reasons(net):
    from talkingface.evaluation.base import SkipClip

    crops = np.zeros((20, 224, 224, 3), np.uint8)
    noise = np.random.default_rng(0).normal(0, 0.1, 20 * 640).astype(np.float32)
    with pytest.raises(SkipClip, match="silent audio"):
        sync_score(net, crops, np.zeros(20 * 640, np.float32))
    with pytest.raises(SkipClip, match="too short for SyncNet"):
        sync_score(net, crops, noise[:5 * 640])  # 5 frames of audio: no window
    with pytest.raises(SkipClip, match="too short"):
        sync_score(net, crops[:5], noise)


def test_loader_reads_an_official_style_file(tmp_path, net):
    """A pre-0.4 state dict (no num_batches_tracked) loads strictly; weights are recorded with sha256."""
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path)
    loaded = load_syncnet(path)
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.weights_info["file"] == str(path) and len(loaded.weights_info["sha256"]) == 64
    del state["netfclip.3.bias"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="netfclip.3.bias"):
        load_syncnet(path)


def test_missing_checkpoint_says_how_to_get_it(tmp_path):
    with pytest.raises(CheckpointError, match="syncnet_v2.model"):
        load_syncnet(root=tmp_path)


def test_face_mode_scores_the_track_with_its_own_audio_span(fixture, net):
    """A face appearing at frame 3: crops of the track, audio cut at 3*640 samples (run_pipeline's audio crop)."""
    from talkingface.evaluation.base import EvalContext
    from talkingface.evaluation.lse_crop import FaceTrack, track_crops

    frames = np.repeat(np.repeat(fixture["frames_rgb"], 3, axis=1), 3, axis=2)  # (17, 144, 192, 3)
    box = np.array([[40.0, 20.0, 150.0, 130.0, 0.99]])
    calls = []

    def detector(frame):
        calls.append(frame.shape)
        return box if len(calls) > 3 else np.zeros((0, 5))

    # random frames are a cut every 15 frames for the shot detector: switch it off here
    config = {"lse_crop": "face", "lse_min_track": 5, "lse_min_face_size": 100, "lse_scene_threshold": None,
              "lse_protocol": "direct"}
    context = EvalContext(config, detector=detector)
    metric = LSEMetric(config, context=context, net=net)
    audio = fixture["audio_int16"].astype(np.float32) / 32768.0
    out = metric.update(EvalItem("face", VideoClip(frames, 25.0), audio=audio))
    assert len(calls) == 17 and out["reason"] is None
    assert out["lse_tracks"][0]["start"] == 3 and out["lse_tracks"][0]["end"] == 17
    track = FaceTrack(np.arange(3, 17), np.repeat(box[:, :4], 14, axis=0))
    expected = sync_score(net, track_crops(frames, track), audio[3 * 640:17 * 640])
    assert expected.num_windows == min(14, (len(audio) - 3 * 640) // 640) - 5
    assert out["lse_d"] == pytest.approx(expected.lse_d, abs=1e-6)
    assert out["lse_c"] == pytest.approx(expected.lse_c, abs=1e-6)
    assert out["lse_windows"] == expected.num_windows
