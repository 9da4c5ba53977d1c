"""A metric is one class: registering it is all the evaluator, the score cache, the pre-flight and the report need.

The class below is a real (if simple) metric written the way a new one is
added; the registry snapshot fixture in conftest removes it after each test.
"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from talkingface import registry
from talkingface.cli import module_main
from talkingface.evaluation.base import BaseMetric, SkipClip
from talkingface.media import read_video

SAMPLE = Path(__file__).resolve().parent.parent / "dataset" / "video-retalking"
EVALUATE = ("evaluate", "--dataset=video-retalking", "--generated", str(SAMPLE), "--reference", str(SAMPLE),
            "--pairing=paired", "--fidelity_crop=frame", "--plots=false")


class Brightness(BaseMetric):
    """Mean pixel value of the generated frames minus the reference's (a stand-in for any new metric)."""

    name = "brightness"
    columns = ("brightness", "brightness_frames")
    labels = {"brightness": "Brightness gap"}
    cache_keys = ("fid_frame_stride",)  # it reads every n-th frame, as FID does: another n must score again
    networks = ("gpen",)  # pretend it loads a network: the pre-flight must ask for the file
    needs_reference = True
    calls: list[str] = []

    def score(self, item):
        type(self).calls.append(item.name)
        stride = int(self.context.config["fid_frame_stride"])
        gen = self.context.video(item.generated).frames[::stride]
        ref = self.context.video(item.reference).frames[::stride]
        if not len(gen):
            raise SkipClip("no frames")
        return {"brightness": float(gen.mean()) - float(ref.mean()) + 1.0, "brightness_frames": len(gen)}


@pytest.fixture
def brightness():
    Brightness.calls = []
    registry.register("metric", "brightness")(Brightness)
    return Brightness


def _expected():
    return {p.stem: 1.0 for p in sorted(SAMPLE.glob("*.mp4"))}, {p.stem: read_video(p, 25.0).num_frames
                                                                  for p in sorted(SAMPLE.glob("*.mp4"))}


def test_a_registered_metric_is_computed_cached_and_reported(brightness, tmp_path, caplog):
    values, frames = _expected()
    argv = [*EVALUATE, "--metrics=brightness,psnr", "--weights=seeded", f"--run_dir={tmp_path}"]
    assert module_main([*argv, "--fid_frame_stride=1"]) == 0
    assert sorted(brightness.calls) == sorted(values)
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {r["id"]: r for r in results["per_clip"]}
    for name, value in values.items():  # identical videos: gap 0, +1
        assert rows[name]["brightness"] == pytest.approx(value)
        assert rows[name]["brightness_frames"] == frames[name]
    table = results["aggregate"]["Brightness gap"]
    assert table["mean"] == pytest.approx(1.0) and table["count"] == len(values) and table["note"] == ""
    assert results["evaluation"]["config"]["fid_frame_stride"] == 1  # its cache keys are recorded
    with open(tmp_path / "results.csv", newline="") as handle:
        table_rows = {r["id"]: r for r in csv.DictReader(handle)}
    assert float(table_rows["MEAN"]["brightness"]) == pytest.approx(1.0)  # its own column, not the label
    assert "Brightness gap" not in table_rows["MEAN"]
    assert sorted(p.name for p in (tmp_path / "scores").glob("*.brightness.json")) == \
        sorted(f"{n}.brightness.json" for n in values)

    # same settings: every score is reused; another stride (one of its cache keys) scores it again, PSNR not
    assert module_main([*argv, "--fid_frame_stride=1"]) == 0
    assert len(brightness.calls) == len(values)
    psnr_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "scores").glob("*.psnr.json")}
    assert len(psnr_files) == len(values)
    assert module_main([*argv, "--fid_frame_stride=2"]) == 0
    assert len(brightness.calls) == 2 * len(values)
    assert {p: p.stat().st_mtime_ns for p in psnr_files} == psnr_files
    rows = {r["id"]: r for r in json.loads((tmp_path / "results.json").read_text())["per_clip"]}
    assert all(rows[name]["brightness_frames"] == (frames[name] + 1) // 2 for name in values)


def test_its_checkpoints_are_pre_flighted(brightness, tmp_path, capsys):
    from talkingface.run import scoring

    assert scoring.required_checkpoints({"metrics": ["brightness", "psnr"]}) == ["gpen"]
    code = module_main([*EVALUATE, "--metrics=brightness", "--weights=official",
                        f"--checkpoint_dir={tmp_path / 'none'}", f"--run_dir={tmp_path / 'out'}"])
    assert code == 2
    assert "GPEN-BFR-512.pth" in capsys.readouterr().err
    assert brightness.calls == [] and not (tmp_path / "out").exists()


def test_needs_reference_drops_it_without_references(brightness, tmp_path):
    code = module_main(["evaluate", "--dataset=video-retalking", "--generated", str(SAMPLE / "astronaut_a.mp4"),
                        "--metrics=brightness", "--weights=seeded", f"--run_dir={tmp_path}"])
    assert code == 2  # nothing left to score: said, not silently empty
    assert brightness.calls == []


def test_facts_of_the_built_in_metrics_come_from_their_classes():
    from talkingface.evaluation.evaluator import report_columns

    lse = registry.get("metric", "lse")
    psnr = registry.get("metric", "psnr")
    assert lse.checkpoints({"lse_crop": "face", "lse_detector": "s3fd"}) == ["syncnet", "syncnet_s3fd"]
    assert lse.checkpoints({"lse_crop": "frame", "lse_detector": "s3fd"}) == ["syncnet"]
    # PSNR/SSIM crop faces only where they apply (paired): unpaired they load nothing
    assert psnr.checkpoints({"fidelity_crop": "face", "lse_detector": "s3fd", "pairing": "unpaired"}) == []
    assert psnr.checkpoints({"fidelity_crop": "face", "lse_detector": "s3fd", "pairing": "paired"}) == \
        ["syncnet_s3fd"]
    assert not psnr.applies({"pairing": "unpaired"}) and psnr.applies({"pairing": "paired"})
    assert report_columns(["lse", "fid", "psnr", "ssim"]) == {
        "LSE-D (lower is better)": "lse_d", "LSE-C (higher is better)": "lse_c", "FID": "fid",
        "PSNR (dB)": "psnr", "SSIM": "ssim"}
    assert np.isnan(psnr.summarise([{"skipped": True, "psnr": None}])["psnr"])
