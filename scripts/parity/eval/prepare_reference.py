"""Copy the reference LSE tools out of their checkouts and apply the patches they need here.

    python scripts/parity/eval/prepare_reference.py --syncnet_python /work/ref/syncnet_python \
        --wav2lip /work/ref/Wav2Lip --out /work/refrun/lse

Makes ``OUT/syncnet_python``: a copy of the syncnet_python checkout with Wav2Lip's
``evaluation/scores_LSE/*.py`` copied in (as Wav2Lip's evaluation README says), then
applies each patch below to the copy (never to the checkout; nothing of it enters this
repository). Every patch is an exact text replacement that must match once, so a
changed checkout fails loudly instead of silently running something else.

Patches (also listed in tests/fixtures/eval_reference/README.md):

1. ``.cuda()`` calls removed (SyncNetInstance.py, SyncNetInstance_calc_scores.py):
   CPU only here; no numeric effect.
2. ``run_pipeline.py``: the S3FD face detector is replaced by dlib's HOG frontal face
   detector (class ``DlibDET`` appended, same ``detect_faces(image, conf_th, scales)``
   call, frames shrunk to at most 640 px on the longer side, no upsampling, boxes
   ``left, top, right+1, bottom+1, score`` in frame pixels - the rule of
   ``talkingface.evaluation.lse_crop.DlibDetector``). Why: ``sfd_face.pth`` cannot be
   downloaded here and a seeded S3FD finds no faces, so there would be no tracks to
   compare; S3FD itself is checked bit-exact by tests/fixtures/parity/SyncNetS3FD.
3. ``detectors/s3fd/box_utils.py``: ``np.int`` -> ``int`` (numpy 2; unused with patch 2).
4. PySceneDetect 0.5.1 ``detectors/content_detector.py`` (the copy installed apart, when
   ``--scenedetect`` names it): ``cv2.split(...)`` wrapped in ``list(...)`` twice, because
   OpenCV >= 4.6 returns a tuple and the detector assigns into it; no numeric effect.

PySceneDetect 0.5.1 (the ``VideoManager`` API run_pipeline.py uses) is installed apart
by make_fixtures.sh with ``pip install --target``.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DLIB_DETECTOR = '''

# ---- patch 2 (talkingface scripts/parity/eval/prepare_reference.py): dlib instead of S3FD ----
class DlibDET():

  def __init__(self, max_side=640):
    import dlib
    self.detector = dlib.get_frontal_face_detector()
    self.max_side = max_side

  def detect_faces(self, image, conf_th=0.9, scales=[0.25]):
    h, w = image.shape[:2]
    scale = min(1.0, self.max_side / max(h, w))
    small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                  interpolation=cv2.INTER_AREA)
    rects, scores, _ = self.detector.run(np.ascontiguousarray(small), 0, 0.0)
    if not len(rects):
      return np.zeros((0, 5))
    boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1, s] for r, s in zip(rects, scores)],
                     dtype=np.float64)
    boxes[:, :4] /= scale
    return boxes
'''

PATCHES: list[tuple[str, str, str, int]] = [
    # (file, old, new, expected count)
    ("SyncNetInstance.py", "S(num_layers_in_fc_layers = num_layers_in_fc_layers).cuda();",
     "S(num_layers_in_fc_layers = num_layers_in_fc_layers);", 1),
    ("SyncNetInstance.py", "im_in.cuda()", "im_in", 2),
    ("SyncNetInstance.py", "cc_in.cuda()", "cc_in", 1),
    ("SyncNetInstance_calc_scores.py", "S(num_layers_in_fc_layers = num_layers_in_fc_layers).cuda();",
     "S(num_layers_in_fc_layers = num_layers_in_fc_layers);", 1),
    ("SyncNetInstance_calc_scores.py", "im_in.cuda()", "im_in", 2),
    ("SyncNetInstance_calc_scores.py", "cc_in.cuda()", "cc_in", 1),
    ("run_pipeline.py", "  DET = S3FD(device='cuda')", "  DET = DlibDET()", 1),
    ("run_pipeline.py", "# ========== ========== ========== ==========\n# # FACE DETECTION",
     DLIB_DETECTOR.strip("\n") + "\n\n# ========== ========== ========== ==========\n# # FACE DETECTION", 1),
    ("detectors/s3fd/box_utils.py", "astype(np.int)", "astype(int)", 1),
]


SCENEDETECT_PATCHES: list[tuple[str, str, str, int]] = [
    ("scenedetect/detectors/content_detector.py", "curr_hsv = cv2.split(cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV))",
     "curr_hsv = list(cv2.split(cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)))", 1),
    ("scenedetect/detectors/content_detector.py",
     "last_hsv = cv2.split(cv2.cvtColor(self.last_frame, cv2.COLOR_BGR2HSV))",
     "last_hsv = list(cv2.split(cv2.cvtColor(self.last_frame, cv2.COLOR_BGR2HSV)))", 1),
]


def apply(root: Path, patches: list[tuple[str, str, str, int]]) -> None:
    for name, old, new, count in patches:
        path = root / name
        text = path.read_text()
        if text.count(new) == count and (old in new or old not in text):
            continue  # already applied (an installed package patched in place)
        found = text.count(old)
        if found != count:
            raise SystemExit(f"patch for {name}: expected {count} match(es) of {old[:60]!r}, found {found}")
        path.write_text(text.replace(old, new))


def prepare(syncnet_python: Path, wav2lip: Path, out: Path) -> Path:
    target = out / "syncnet_python"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(syncnet_python, target, ignore=shutil.ignore_patterns(".git"))
    for script in sorted((wav2lip / "evaluation" / "scores_LSE").glob("*.py")):
        shutil.copy(script, target / script.name)
    apply(target, PATCHES)
    (target / "data").mkdir(exist_ok=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--syncnet_python", type=Path, required=True, help="syncnet_python checkout")
    parser.add_argument("--wav2lip", type=Path, required=True, help="Wav2Lip checkout")
    parser.add_argument("--out", type=Path, required=True, help="work folder outside the repository")
    parser.add_argument("--scenedetect", type=Path, default=None,
                        help="folder holding the scenedetect 0.5.1 package installed apart (patched in place)")
    args = parser.parse_args()
    print(prepare(args.syncnet_python, args.wav2lip, args.out))
    if args.scenedetect is not None:
        apply(args.scenedetect, SCENEDETECT_PATCHES)


if __name__ == "__main__":
    main()
