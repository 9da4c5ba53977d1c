"""Record real dlib results on the GPU bench clip for the ``dlib`` stand-in (see dlib.py).

    python bench/replay_dlib/record.py --height 720     # writes bench/replay_dlib/recording.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # the real dlib, not the stand-in
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    import dlib
    from profile_pipeline import make_clip

    from talkingface.weights.manifest import checkpoint_path
    from talkingface.face.croper import Croper
    from talkingface.media import read_video

    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--frames", type=int, default=4)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        face, _ = make_clip(Path(tmp), args.frames, args.height)
        frames = np.asarray(read_video(face).frames)
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(checkpoint_path("dlib_landmarks")))
    crops = np.zeros((1, 256, 256, 3), np.uint8)
    Croper().crop(frames[:1], crops)
    rects, shapes, seconds = {}, [], {}
    for name, image in (("frame", frames[0]), ("crop", crops[0])):
        start = time.process_time()
        found = detector(image, 1)
        seconds[f"detect_{name}_s"] = time.process_time() - start
        r = max(found, key=lambda r: r.width() * r.height())
        rects[f"{image.shape[0]}x{image.shape[1]}"] = [r.left(), r.top(), r.right(), r.bottom()]
        start = time.process_time()
        pts = predictor(image, r).parts()
        seconds[f"landmarks_{name}_s"] = time.process_time() - start
        w, h = r.right() - r.left(), r.bottom() - r.top()
        shapes.append([[(p.x - r.left()) / w, (p.y - r.top()) / h] for p in pts])
    h, w = crops.shape[1:3]
    cl, ct, cr, cb = rects[f"{h}x{w}"]
    out = {"rects": rects, "relative_rect": [cl / w, ct / h, cr / w, cb / h],
           "shape": np.mean(np.asarray(shapes), 0).round(5).tolist(), "dlib_cpu_seconds": seconds,
           "clip_height": args.height}
    (HERE / "recording.json").write_text(json.dumps(out))
    print(json.dumps(out["dlib_cpu_seconds"]), out["rects"])


if __name__ == "__main__":
    main()
