"""evaluate_pairs on real files: per-clip rows, reasons for bad clips, aggregate, weights record."""
import numpy as np
import pytest

from talkingface import registry
from talkingface.evaluation import fid as fid_module
from talkingface.evaluation.base import EvalItem, Metric
from talkingface.evaluation.evaluator import evaluate_pairs
from talkingface.media.video import write_video

CONFIG = {"weights": "seeded", "seed": 0, "lse_crop": "frame", "fid_crop": "frame", "fidelity_crop": "frame",
          "pairing": "paired", "device": "cpu", "lse_detector": "dlib"}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_media")
    rng = np.random.default_rng(0)
    still = rng.integers(40, 200, (48, 64, 3), dtype=np.uint8)
    frames = np.stack([np.roll(still, i, axis=1) for i in range(12)])
    speech = (0.2 * rng.standard_normal(12 * 640)).astype(np.float32)
    paths = {
        "ref": write_video(root / "ref.mp4", frames, 25.0, audio=speech),
        "gen": write_video(root / "gen.mp4", frames[:, :, ::-1].copy(), 25.0, audio=speech),
        "silent": write_video(root / "silent.mp4", frames[:, :, ::-1].copy(), 25.0, audio=np.zeros_like(speech)),
        "short": write_video(root / "short.mp4", frames[:4], 25.0, audio=speech[:4 * 640]),
        "missing": root / "does_not_exist.mp4",
    }
    return paths


@pytest.fixture
def cheap_fid(monkeypatch):
    """A 2048-d scipy sqrtm takes ~30 s on this machine; the numerics are tested in test_eval_fid."""
    monkeypatch.setattr(fid_module, "frechet_distance", lambda *stats: 7.0)


def test_registry_names_resolve_to_metric_classes():
    for name in ("lse", "fid", "psnr", "ssim"):
        cls = registry.get("metric", name)
        assert cls.name == name and {"update", "compute", "reset", "rows"} <= set(dir(cls))


def test_bad_clips_get_reasons_and_the_batch_goes_on(media, cheap_fid):
    items = [
        EvalItem("good", media["gen"], media["ref"]),
        EvalItem("silent", media["silent"], media["ref"]),
        EvalItem("short", media["short"], media["ref"]),
        {"id": "gone", "generated_video": str(media["missing"]), "real_video": str(media["ref"]), "audio": None},
    ]
    rows, agg = evaluate_pairs(items, ["lse", "fid", "psnr", "ssim"], {**CONFIG, "fid_frame_stride": 3})
    by = {r["name"]: r for r in rows}
    assert list(by) == ["good", "silent", "short", "gone"]
    good = by["good"]
    assert good["status"] == "ok" and good["reasons"] == {}
    assert np.isfinite(good["lse_d"]) and np.isfinite(good["lse_c"]) and isinstance(good["lse_offset"], int)
    assert 0 < good["ssim"] < 1 and good["psnr"] > 0 and good["fid_frames"] == 4
    assert by["silent"]["lse_d"] is None and "silent audio" in by["silent"]["reasons"]["lse"]
    assert by["silent"]["status"] == "partial" and by["silent"]["psnr"] is not None
    assert "too short for SyncNet" in by["short"]["reasons"]["lse"]
    assert "frame-count mismatch: generated 4 vs reference 12" in by["short"]["reasons"]["psnr"]
    gone = by["gone"]
    assert gone["status"] == "failed" and set(gone["reasons"]) == {"lse", "fid", "psnr", "ssim"}
    assert "does not exist" in gone["reasons"]["lse"]
    assert agg["lse_d"]["n"] == 1 and agg["lse_d"]["skipped"] == 3 and agg["lse_d"]["std"] == 0.0
    assert agg["lse_d"]["mean"] == pytest.approx(good["lse_d"])
    assert agg["psnr"]["n"] == 2 and agg["psnr"]["mean"] == pytest.approx(np.mean([good["psnr"],
                                                                                  by["silent"]["psnr"]]))
    assert agg["fid"] == {"value": 7.0, "generated_frames": 4 + 4 + 2, "reference_frames": 12}  # every 3rd frame
    assert agg["clips"] == {"total": 4, "failed": 1, "partial": 2, "all_failed": False}
    assert agg["weights"]["lse"]["weights"] == "seeded" and agg["weights"]["lse"]["crop"] == "frame"
    assert "SEEDED" in agg["warning"]


def test_all_failed_and_unpaired_not_applicable(media, cheap_fid, tmp_path):
    config = {**CONFIG, "pairing": "unpaired"}
    rows, agg = evaluate_pairs([EvalItem("gone", media["missing"], media["ref"])], ["lse", "psnr"], config)
    assert agg["clips"]["all_failed"] is True and rows[0]["status"] == "failed"
    rows, agg = evaluate_pairs([EvalItem("good", media["gen"], media["ref"])], ["lse", "psnr"], config,
                               plots_dir=tmp_path)
    assert rows[0]["status"] == "ok"  # "not applicable" is not a failure
    assert rows[0]["psnr"] is None and rows[0]["reasons"]["psnr"].startswith("not applicable: unpaired")
    assert np.isnan(agg["psnr"]["mean"]) and agg["clips"]["all_failed"] is False
    assert (tmp_path / "good_sync.png").stat().st_size > 1000


def test_face_mode_without_a_face_is_reported(media):
    config = {**CONFIG, "lse_crop": "face", "lse_detector": "dlib"}
    rows, agg = evaluate_pairs([EvalItem("noface", media["gen"], media["ref"])], ["lse"], config)
    assert rows[0]["status"] == "failed"
    # the reference chain's avi (-async 1 -r 25) has two frames more than the 12 decoded directly
    assert rows[0]["reasons"]["lse"] == "no face detected in any of 14 frames"
    rows, _ = evaluate_pairs([EvalItem("noface", media["gen"], media["ref"])], ["lse"],
                             {**config, "lse_protocol": "direct"})
    assert rows[0]["reasons"]["lse"] == "no face detected in any of 12 frames"
    assert agg["weights"]["lse"]["detector"] == "dlib"


def test_metrics_follow_the_protocol():
    metric = registry.get("metric", "psnr")({"pairing": "paired", "lse_detector": "dlib"})
    assert isinstance(metric, Metric)
    metric.reset()
    assert metric.rows() == []


def test_unavailable_detector_fails_before_any_clip(tmp_path):
    """lse_detector=s3fd without its module or sfd_face.pth: one clear error, not a reason per clip."""
    from talkingface.errors import TalkingFaceError

    from talkingface.evaluation.lse import LSEMetric
    from talkingface.evaluation.syncnet import SyncNet

    config = {**CONFIG, "lse_crop": "face", "lse_detector": "s3fd", "weights": "official",
              "checkpoint_dir": str(tmp_path)}
    with pytest.raises(TalkingFaceError) as info:
        LSEMetric(config, net=SyncNet())
    assert "s3fd" in str(info.value).lower() or "sfd_face" in str(info.value)
