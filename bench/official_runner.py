"""Run the patched official inference.py with the full real workload on seeded weights, and time it.

Runs under the reference environment (../shared/ENVIRONMENT.md), from the
``code`` folder scripts/parity/prepare_official.py writes; called by
bench/bench_official.py:

    cd OFFICIAL/code && REF/bin/python .../bench/official_runner.py DETECTIONS.json RESULT.json -- <inference.py args>

Seeded detectors find no faces, so, as on the project side (bench/workload.py),
every face detector still runs on every image it gets (its cost is paid) and
then answers with a real dlib detection made on the clip's real pixels
(``DETECTIONS.json``): GPEN's RetinaFace and facexlib's RetinaFace (face box +
5 points), the S3FD of ``face_detect`` (face box), and face-alignment's S3FD
(face box, so its FAN runs; the landmarks returned are dlib's of the first
crop). Every network then does the work it does with official weights. Nothing
in the official code is edited: these are runtime wrappers, listed here.
Writes wall and CPU seconds (self + children, e.g. ffmpeg), peak RSS and the
thread CPU seconds of each top-level network call.
"""
from __future__ import annotations

import json
import os
import resource
import runpy
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def install(det: dict) -> dict[str, int]:
    """Wrap the official face detectors (each one still runs); returns call counters."""
    box = np.asarray(det["box"], np.float32)  # x1, y1, x2, y2
    pts = np.asarray(det["points5"], np.float32)  # (5, 2)
    lm68 = np.asarray(det["lm68"], np.float32)
    calls = {"gpen_retinaface": 0, "facexlib_retinaface": 0, "s3fd_boxes": 0, "fan_s3fd": 0}

    from face_detect import retinaface_detection  # GPEN's (third_part/GPEN on sys.path)
    real_gpen = retinaface_detection.RetinaFaceDetection.detect

    def gpen_detect(self, img_raw, *a, **k):
        calls["gpen_retinaface"] += 1
        real_gpen(self, img_raw, *a, **k)
        return np.concatenate([box, [1.0]])[None].astype(np.float32), np.concatenate([pts[:, 0], pts[:, 1]])[None]

    retinaface_detection.RetinaFaceDetection.detect = gpen_detect

    from facexlib.detection import retinaface as fx_retinaface
    real_fx = fx_retinaface.RetinaFace.detect_faces

    def fx_detect(self, image, *a, **k):
        calls["facexlib_retinaface"] += 1
        real_fx(self, image, *a, **k)
        return np.concatenate([box, [1.0], pts.reshape(-1)])[None].astype(np.float32)

    fx_retinaface.RetinaFace.detect_faces = fx_detect

    from third_part import face_detection
    real_s3fd = face_detection.FaceAlignment.get_detections_for_batch

    def s3fd_batch(self, images):
        calls["s3fd_boxes"] += len(images)
        real_s3fd(self, images)
        return [tuple(int(v) for v in box)] * len(images)

    face_detection.FaceAlignment.get_detections_for_batch = s3fd_batch

    import face_alignment
    from face_alignment.detection.sfd import sfd_detector
    real_sfd = sfd_detector.SFDDetector.detect_from_image

    def sfd(self, image):
        calls["fan_s3fd"] += 1
        real_sfd(self, image)
        return [np.concatenate([box, [1.0]])]

    sfd_detector.SFDDetector.detect_from_image = sfd
    real_landmarks = face_alignment.FaceAlignment.get_landmarks_from_image

    def landmarks(self, *a, **k):
        real_landmarks(self, *a, **k)  # FAN runs on the box above
        return [lm68.copy()]

    face_alignment.FaceAlignment.get_landmarks_from_image = landmarks
    return calls


def main() -> None:
    det_path, result_path = sys.argv[1], sys.argv[2]
    args = sys.argv[sys.argv.index("--") + 1:]
    code = Path.cwd()
    for p in (str(code), str(code / "third_part"), str(code / "third_part" / "GPEN"), str(code / "third_part" / "GFPGAN")):
        sys.path.insert(0, p)
    import cv2
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    sys.path.insert(0, str(HERE))
    from profile_pipeline import NetworkTimer

    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in (HERE, HERE.parent)]  # official first

    calls = install(json.loads(Path(det_path).read_text()))
    timer = NetworkTimer()
    sys.argv = ["inference.py", *args]
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    runpy.run_path(str(code / "inference.py"), run_name="__main__")
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    timer.close()
    out_frames = None
    if "--outfile" in args:
        capture = cv2.VideoCapture(args[args.index("--outfile") + 1])
        out_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    Path(result_path).write_text(json.dumps({
        "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 1024, "networks_s": timer.seconds,
        "networks_cpu_s": timer.cpu_seconds, "network_calls": timer.calls, "detector_calls": calls,
        "threads": threads, "torch": torch.__version__, "output_frames": out_frames}, indent=1))


if __name__ == "__main__":
    main()
