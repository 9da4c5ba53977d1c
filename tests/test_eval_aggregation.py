"""LSE aggregation: per clip (a clip's tracks averaged first) or per track (syncnet_python's lines); stated."""
import pytest

from talkingface.evaluation.base import row
from talkingface.evaluation.evaluator import ClipScore, aggregate_scores
from talkingface.run.report import metric_table
from talkingface.run.scoring import table_aggregate


def _clip(name, tracks):
    values = {"lse_d": sum(d for d, _ in tracks) / len(tracks), "lse_c": sum(c for _, c in tracks) / len(tracks),
              "lse_offset": 0}
    lse_tracks = [{"start": 0, "end": 100, "lse_d": d, "lse_c": c, "lse_offset": 0, "windows": 95} for d, c in tracks]
    return row(name, values, None, lse_tracks=lse_tracks)


ROWS = [_clip("one", [(8.0, 6.0)]), _clip("two", [(6.0, 2.0), (7.0, 4.0), (11.0, 6.0)]),
        row("none", {"lse_d": None, "lse_c": None, "lse_offset": None}, "no face detected in any of 80 frames")]


def _aggregate(aggregation):
    scores = [{"lse": ClipScore("lse", r)} for r in ROWS]
    rows = [{"name": r["name"], "status": "failed" if r["skipped"] else "ok"} for r in ROWS]
    config = {"lse_aggregation": aggregation, "lse_protocol": "reference", "lse_crop": "face", "lse_detector": "s3fd"}
    return aggregate_scores(["lse"], rows, scores, config, {"lse": {"weights": "seeded"}})


def test_per_clip_is_the_mean_of_clip_means():
    agg = _aggregate("per_clip")
    assert agg["lse_d"]["mean"] == pytest.approx((8.0 + 8.0) / 2) and agg["lse_d"]["n"] == 2
    assert agg["lse_c"]["mean"] == pytest.approx((6.0 + 4.0) / 2)
    assert (agg["lse_d"]["clips"], agg["lse_d"]["tracks"], agg["lse_d"]["skipped"]) == (2, 4, 1)
    assert agg["lse_d"]["aggregation"] == "per_clip" and agg["config"]["lse_aggregation"] == "per_clip"


def test_per_track_is_the_mean_of_every_track():
    agg = _aggregate("per_track")
    assert agg["lse_d"]["mean"] == pytest.approx((8 + 6 + 7 + 11) / 4) and agg["lse_d"]["n"] == 4
    assert agg["lse_c"]["mean"] == pytest.approx((6 + 2 + 4 + 6) / 4)
    assert agg["lse_d"]["std"] == pytest.approx(1.8708287, rel=1e-6)


def test_the_table_and_the_files_say_which():
    for aggregation, words in (("per_clip", "mean of clips"), ("per_track", "mean of 4 tracks")):
        agg = _aggregate(aggregation)
        table = table_aggregate(agg, "unpaired")
        note = table["LSE-D (lower is better)"]["note"]
        assert note.startswith(f"reference, face tracks (s3fd), {words}") and "1 clip(s) not scored by this metric" in note
        text = metric_table({"aggregate": table, "evaluation": {"config": agg["config"]}})
        assert "LSE protocol: reference (the reference tools' ffmpeg media chain" in text
        assert f"aggregation: {aggregation}" in text
