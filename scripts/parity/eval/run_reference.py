"""Run the (patched) reference LSE tools on the fixture clips and store their numbers.

Run with the reference environment's python, from anywhere (see make_fixtures.sh):

    PYTHONPATH=WORK/scenedetect051 REFENV/bin/python scripts/parity/eval/run_reference.py \
        --tools WORK/syncnet_python --weights WORK/syncnet_seeded.model \
        --clips tests/fixtures/eval_reference/clips --out tests/fixtures/eval_reference/reference.json

Face mode, per clip, exactly as Wav2Lip's ``calculate_scores_real_videos.sh`` does:
``run_pipeline.py`` (face tracks, crops) then ``calculate_scores_real_videos.py``
(prints ``min_dist conf`` per track); ``run_syncnet.py`` is also run for each clip
to keep each track's full (windows x 31) distance matrix (``activesd.pckl``), from
which the per-offset mean curve and the offset are taken the way
``SyncNetInstance.evaluate`` takes them. Frame mode: ``SyncNetInstance_calc_scores``'s
``evaluate`` per file (what ``calculate_scores_LRS.py`` loops over) and the script
itself on the folder for its printed averages.

Nothing here computes a score itself: every number is printed or pickled by the tools.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

FACE_CLIPS = ("face25", "face30", "cut")
FRAME_CLIPS = ("face25", "face30")
MIN_TRACK = 50  # the clips are 3-4 s; run_pipeline's default 100 (4 s) would keep no track
VSHIFT = 15


def sh(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stdout[-3000:]}")
    return done.stdout


def curve_stats(dists) -> dict:
    """offset / min dist / conf from a (windows, 31) matrix, with SyncNetInstance.evaluate's torch ops."""
    import numpy as np
    import torch

    rows = [torch.from_numpy(np.asarray(row)) for row in dists]
    mdist = torch.mean(torch.stack(rows, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return {"mdist": [float(v) for v in mdist], "offset": int(VSHIFT - minidx), "min_dist": float(minval),
            "conf": float(torch.median(mdist) - minval), "windows": len(rows)}


def face_mode(tools: Path, weights: Path, clip: Path, data: Path) -> dict:
    name = clip.stem
    common = ["--videofile", str(clip), "--reference", name, "--data_dir", str(data)]
    sh([sys.executable, "run_pipeline.py", *common, "--min_track", str(MIN_TRACK)], tools)
    printed = sh([sys.executable, "calculate_scores_real_videos.py", "--initial_model", str(weights), *common], tools)
    sh([sys.executable, "run_syncnet.py", "--initial_model", str(weights), *common], tools)
    with open(data / "pywork" / name / "tracks.pckl", "rb") as handle:
        tracks = pickle.load(handle)
    with open(data / "pywork" / name / "activesd.pckl", "rb") as handle:
        dists = pickle.load(handle)
    lines = [line.split() for line in printed.splitlines() if re.fullmatch(r"\s*[-0-9.e]+ [-0-9.e]+\s*", line)]
    if len(lines) != len(tracks) or len(dists) != len(tracks):
        sys.exit(f"{name}: {len(tracks)} tracks, {len(lines)} printed scores, {len(dists)} distance matrices")
    out = []
    for track, matrix, (dist, conf) in zip(tracks, dists, lines):
        frames = track["track"]["frame"]
        stats = curve_stats(matrix)
        out.append({"start": int(frames[0]), "end": int(frames[-1]) + 1,
                    "printed_min_dist": float(dist), "printed_conf": float(conf), **stats,
                    "crop_x": [float(v) for v in track["proc_track"]["x"]],
                    "crop_y": [float(v) for v in track["proc_track"]["y"]],
                    "crop_s": [float(v) for v in track["proc_track"]["s"]]})
    frames = len(list((data / "pyframes" / name).glob("*.jpg")))
    return {"mode": "face", "frames_25fps": frames, "tracks": out}


def frame_mode(tools: Path, weights: Path, clips: list[Path], data: Path) -> dict:
    sys.path.insert(0, str(tools))
    cwd = os.getcwd()
    os.chdir(tools)
    try:
        from SyncNetInstance_calc_scores import SyncNetInstance

        instance = SyncNetInstance()
        instance.loadParameters(str(weights))
        opt = argparse.Namespace(batch_size=20, vshift=VSHIFT, tmp_dir=str(data / "pytmp"), reference="lrs")
        per_clip = {}
        for clip in clips:
            offset, conf, min_dist = instance.evaluate(opt, videofile=str(clip))
            per_clip[clip.stem] = {"mode": "frame", "offset": int(offset), "conf": float(conf),
                                   "min_dist": float(min_dist)}
    finally:
        os.chdir(cwd)
    folder = data / "lrs_clips"
    folder.mkdir(exist_ok=True)
    for clip in clips:
        shutil.copy(clip, folder / clip.name)
    printed = sh([sys.executable, "calculate_scores_LRS.py", "--initial_model", str(weights), "--data_root",
                  str(folder), "--tmp_dir", str(data / "pytmp"), "--reference", "lrs"], tools)
    conf = re.search(r"Average Confidence: ([-0-9.e]+)", printed)
    dist = re.search(r"Average Minimum Distance: ([-0-9.e]+)", printed)
    return {"clips": per_clip, "script_average": {"conf": float(conf.group(1)), "min_dist": float(dist.group(1))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", type=Path, required=True, help="the patched copy (prepare_reference.py)")
    parser.add_argument("--weights", type=Path, required=True, help="seeded syncnet_v2.model layout file")
    parser.add_argument("--clips", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import cv2
    import scenedetect
    import torch

    torch.set_num_threads(1)
    data = args.tools / "data" / "fixtures"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    face = {name: face_mode(args.tools, args.weights.resolve(), (args.clips / f"{name}.mp4").resolve(), data)
            for name in FACE_CLIPS}
    frame = frame_mode(args.tools, args.weights.resolve(),
                       [(args.clips / f"{name}.mp4").resolve() for name in FRAME_CLIPS], data)
    ffmpeg = subprocess.run(["ffmpeg", "-version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    result = {
        "meta": {"weights": "SyncNet seeded-v1 seed 0 with the overrides of tests/fixtures/parity/SyncNet.seed0.npz "
                            "(scripts/parity/eval/make_seeded_syncnet.py)",
                 "detector": "dlib HOG (patch 2 of scripts/parity/eval/prepare_reference.py)",
                 "min_track": MIN_TRACK, "min_face_size": 100, "vshift": VSHIFT, "ffmpeg": ffmpeg,
                 "opencv": cv2.__version__, "scenedetect": scenedetect.__version__, "torch": torch.__version__,
                 "python": platform.python_version(),
                 "syncnet_python": "6efbb1c", "wav2lip": "5c90fa9"},
        "face": face, "frame": frame,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(args.out)


if __name__ == "__main__":
    main()
