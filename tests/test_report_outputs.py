"""results.csv and report.html read well (issue 16, point 9)."""
import csv
import io
from pathlib import Path

import numpy as np

from talkingface.media import write_video
from talkingface.run.report import results_csv
from talkingface.run.report_html import contact_sheet_figure, scatter_figure

LONG = "speaker_with_a_very_long_identifier_0123456789__another_speaker_audio_take_07"


def _results(run_dir: Path) -> dict:
    return {
        "weights": {"weights": "official"},
        "per_clip": [
            {"id": "a", "status": "ok", "generated": str(run_dir / "videos" / "a.mp4"),
             "reference": "dataset/x/a.mp4", "audio": str(run_dir.parent / "elsewhere" / "a.wav"),
             "lse_plot": str(run_dir / "plots" / "a_sync.png"), "lse_d": 7.0, "lse_c": 5.0, "psnr": 30.0},
            {"id": "b", "status": "failed", "error": "InputMediaError: ...", "lse_d": None},
        ],
        "aggregate": {"LSE-D (lower is better)": {"mean": 7.0, "std": 0.5, "count": 1},
                      "LSE-C (higher is better)": {"mean": 5.0, "std": 0.25, "count": 1},
                      "FID": {"mean": 12.0, "std": None, "count": 30},
                      "PSNR (dB)": {"mean": 30.0, "std": 0.0, "count": 1}},
    }


def test_results_csv_paths_relative_to_the_run_folder_and_stats_in_metric_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "saved" / "run-1"
    rows = list(csv.DictReader(io.StringIO(results_csv(_results(run_dir), run_dir))))
    a = rows[0]
    assert a["generated"] == "videos/a.mp4" and a["lse_plot"] == "plots/a_sync.png"
    assert a["reference"] == "../../dataset/x/a.mp4"  # was relative to the working folder
    assert a["audio"] == "../elsewhere/a.wav"
    mean, std = rows[-2], rows[-1]
    assert (mean["id"], std["id"]) == ("MEAN", "STD")
    assert (mean["lse_d"], mean["lse_c"], mean["psnr"], mean["fid"]) == ("7.0", "5.0", "30.0", "12.0")
    assert (std["lse_d"], std["lse_c"]) == ("0.5", "0.25")
    header = list(rows[0].keys())
    assert not any("(" in column for column in header)  # no "LSE-D (lower is better)" columns
    assert all(row["weights"] == "official" for row in rows)
    assert "lse_protocol" not in header  # no LSE configuration recorded: nothing claimed


def test_results_csv_rows_say_how_the_lse_numbers_were_made(tmp_path):
    results = {**_results(tmp_path), "evaluation": {"config": {"lse_protocol": "direct",
                                                                "lse_aggregation": "per_track"}}}
    rows = list(csv.DictReader(io.StringIO(results_csv(results, tmp_path))))
    assert [(r["lse_protocol"], r["lse_aggregation"]) for r in rows] == [("direct", "per_track")] * len(rows)
    assert [r["id"] for r in rows] == ["a", "b", "MEAN", "STD"]


def _inside(inner, outer, slack=1.0):
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack and inner.y0 >= outer.y0 - slack
            and inner.y1 <= outer.y1 + slack)


def test_scatter_labels_stay_inside_the_axes():
    per_clip = [{"id": f"{LONG}_{i}", "lse_d": d, "lse_c": c}
                for i, (d, c) in enumerate([(6.0, 0.5), (9.5, 0.4), (7.5, 8.0), (8.0, 0.6), (6.5, 7.0)])]
    fig = scatter_figure(per_clip)
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    labels = [t for t in ax.texts]
    assert len(labels) == 3
    assert all(_inside(t.get_window_extent(renderer), ax.get_window_extent(renderer)) for t in labels)


def test_contact_sheet_captions_carry_the_whole_clip_id(tmp_path):
    frames = np.full((3, 96, 96, 3), 100, np.uint8)
    write_video(tmp_path / "g.mp4", frames, 25)
    fig = contact_sheet_figure([{"id": LONG, "generated": str(tmp_path / "g.mp4"),
                                 "reference": str(tmp_path / "g.mp4")}])
    fig.canvas.draw()  # as saving the PNG does: image axes take their aspect here
    renderer = fig.canvas.get_renderer()
    title = fig.axes[0].title
    assert title.get_text().replace("\n", "").startswith(LONG)
    assert _inside(title.get_window_extent(renderer), fig.bbox)
