"""Run the patched official ``inference.py`` on a short clip and dump every stage.

Why: the project's stages are compared with the official ones (tests/test_reference_pipeline.py).
The official code is run, not re-written: a driver imports the patched
``inference.py`` (prepare_official.py) and wraps its functions to record what goes
in and out of each stage, then calls its ``main()``.

    /work/refenv/bin/python scripts/parity/run_official_stages.py \
        --official /work/refrun/official --work /work/refrun/stages \
        --clip dataset/video-retalking/astronaut_a.mp4 --audio dataset/video-retalking/astronaut_a.wav --frames 12 \
        --fixtures tests/fixtures/pipeline_reference

``--official`` is the folder prepare_official.py wrote (its ``code``, ``checkpoints``,
``env.sh``). The clip's first ``--frames`` frames are decoded with PyAV (as the
project decodes them) and re-encoded losslessly (PNG in AVI, RGB) so that the
official OpenCV reader sees exactly those pixels; the audio is cut to
``--audio_samples`` samples (default 9600 = 0.6 s, which gives the official 12 mel
windows for 12 frames at 25 fps).

Substitutions (seeded detectors find no face, or thousands of noise boxes; FAN then
runs once per box, ~10 min per frame): on the official side every face *detector*
is replaced by dlib's HOG detector with the real 68-point predictor of
face_recognition_models (largest face), the same one the project's seeded runs use:

* face-alignment's S3FD in front of FAN (landmarks, both calls): box = dlib rect
  ``(left, top, right, bottom, 1.0)`` on the RGB image FAN receives;
* face_detection's S3FD (L-Net face boxes, ``get_detections_for_batch``): dlib rect
  on the frame converted BGR->RGB;
* GPEN's RetinaFace (``FaceEnhancement``) and facexlib's RetinaFace (``GFPGANer``):
  dlib rect + 5 points (eye centres = mean of points 36-41 / 42-47, nose 30,
  mouth corners 48, 54), score 1.0, on BGR->RGB.
* where dlib finds no face either (seeded D-Net / E-Net outputs are noise, and the
  official GPEN then crashes: ``mask_sharp`` unbound), the box ``(0.2w, 0.2h, 0.8w,
  0.9h)`` and facexlib's FFHQ 5-point template scaled to the image are used
  (counted in ``template_used``). The FAN detector has no fallback: there the
  official's own no-face path (-1 landmarks, 3DMM on the template) runs.

FAN, ReconNet, D-Net, GPEN, ParseNet, L-Net, E-Net and GFPGAN run with their seeded
weights. Randomness is pinned, nothing else: ``torch.manual_seed(1000 + batch)``
before each L-Net/E-Net call (E-Net's StyleConv draws noise) and
``torch.manual_seed(2000 + frame)`` before each GFPGAN call (fresh noise per call).

Dump: WORK/dump.npz (every stage, every frame) and, with ``--fixtures``, a small
subset (uint8 images, frames 0 and last for the large ones) as
FIXTURES/stages.npz plus FIXTURES/meta.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent(r'''
import json, os, sys
import numpy as np
work, clip, audio, tmp = sys.argv[1:5]
sys.argv = ["inference.py", "--face", clip, "--audio", audio, "--outfile", os.path.join(work, "official.mp4"),
            "--tmp_dir", tmp, "--re_preprocess"]  # never the cached stages of an earlier run
sys.path.insert(0, os.getcwd())
import cv2, dlib, torch, face_recognition_models
torch.set_num_threads(1)
import inference as I

rec = {"lm_calls": [], "fa_boxes": [], "lnet_boxes": [], "gpen_calls": [], "compose_calls": [], "batches": [],
       "enet": [], "gfpgan_in": [], "gfpgan_out": [], "parse": [], "det": [], "final": [], "ctx": None}
_det = dlib.get_frontal_face_detector()
_pred = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

TEMPLATE = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]], np.float32) / 512.0

def template_face(shape):
    h, w = shape[:2]
    rec["template_used"] = rec.get("template_used", 0) + 1
    return (np.array([0.2 * w, 0.2 * h, 0.8 * w, 0.9 * h], np.float32),
            (TEMPLATE * np.array([w, h], np.float32)).astype(np.float32))

def dlib_face(rgb, fallback=False):
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    rects = sorted(_det(rgb, 0), key=lambda r: -r.width() * r.height())
    if not rects:
        return template_face(rgb.shape) if fallback else (None, None)
    r = rects[0]
    shape = _pred(rgb, r)
    lm = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
    five = np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])
    return np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), five

# --- substitute: face-alignment's S3FD in front of FAN
_KE_init = I.KeypointExtractor.__init__
def KE_init(self):
    _KE_init(self)
    def detect_from_image(image):
        box, _ = dlib_face(np.asarray(image), fallback=True)
        rec["fa_boxes"].append(None if box is None else box.tolist())
        return [] if box is None else [np.concatenate([box, [1.0]]).astype(np.float32)]
    self.detector.face_detector.detect_from_image = detect_from_image
I.KeypointExtractor.__init__ = KE_init
_KE_extract = I.KeypointExtractor.extract_keypoint
def KE_extract(self, images, name=None, info=True):
    out = _KE_extract(self, images, name, info)
    if isinstance(images, list):
        rec["lm_calls"].append(np.array(out, np.float64, copy=True))  # inference.py flips y in place later
    return out
I.KeypointExtractor.extract_keypoint = KE_extract

# --- substitute: face_detection's S3FD (L-Net boxes)
import third_part.face_detection as FD
def get_detections_for_batch(self, images):
    out = []
    for bgr in images:
        box, _ = dlib_face(np.asarray(bgr)[:, :, ::-1], fallback=True)
        out.append(None if box is None else tuple(int(v) for v in box))
    rec["lnet_boxes"].extend([list(b) for b in out])
    return out
FD.FaceAlignment.get_detections_for_batch = get_detections_for_batch

# --- substitute: GPEN RetinaFace and facexlib RetinaFace (each call's face recorded with its context)
from face_detect.retinaface_detection import RetinaFaceDetection
def det_row(box, five):
    return np.concatenate([box, five.reshape(-1)]).astype(np.float64)  # x1 y1 x2 y2, 5 x (x, y)
def gpen_detect(self, img_raw, *a, **k):
    box, five = dlib_face(np.asarray(img_raw)[:, :, ::-1], fallback=True)
    rec["det"].append((rec["ctx"], det_row(box, five)))
    # RetinaFaceDetection.detect: boxes (K, 5) with score, landmarks (K, 10) as x1..x5, y1..y5
    return np.concatenate([box, [1.0]])[None], np.concatenate([five[:, 0], five[:, 1]])[None]
RetinaFaceDetection.detect = gpen_detect
from facexlib.detection.retinaface import RetinaFace as XRetinaFace
def x_detect_faces(self, image, conf_threshold=0.8, nms_threshold=0.4, use_origin_size=True):
    box, five = dlib_face(np.asarray(image)[:, :, ::-1], fallback=True)
    rec["det"].append(("gfpgan", det_row(box, five)))
    return np.concatenate([box, [1.0], five.reshape(-1)])[None].astype(np.float32)
XRetinaFace.detect_faces = x_detect_faces

# --- dumps. The classes are wrapped as inference.py bound them (third_part.GPEN.gpen_face_enhancer,
# third_part.GFPGAN.gfpgan): importing them by their short names gives other class objects.
_crop = I.Croper.crop
def crop(self, *a, **k):
    frames, c, q = _crop(self, *a, **k)
    rec["crop"], rec["quad"] = np.asarray(c, np.float64), np.asarray(q, np.float64)
    rec["cropped_shape"] = list(np.asarray(frames[0]).shape)
    return frames, c, q
I.Croper.crop = crop
_gproc = I.FaceEnhancement.process
def gproc(self, img, ori_img, bbox=None, face_enhance=True, possion_blending=False):
    rec["ctx"] = "gpen_ref" if face_enhance else "compose"
    try:
        out = _gproc(self, img, ori_img, bbox=bbox, face_enhance=face_enhance, possion_blending=possion_blending)
    finally:
        rec["ctx"] = None
    if face_enhance:
        rec["gpen_calls"].append((np.asarray(img).copy(), np.asarray(out[0]).copy()))
    else:
        rec["compose_calls"].append((np.asarray(img).copy(), np.asarray(ori_img).copy(), np.asarray(bbox),
                                     np.asarray(out[0]).copy()))
    return out
I.FaceEnhancement.process = gproc
from face_parse.face_parsing import FaceParse
_parse = FaceParse.process
def parse(self, im, masks=None):
    out = _parse(self, im, masks) if masks is not None else _parse(self, im)
    # inside GPEN's process: its face mask (references / compose); outside: inference.py's mouth mask
    rec["parse"].append((rec["ctx"] or "mouth", np.asarray(out[0]).copy()))
    return out
FaceParse.process = parse
_datagen = I.datagen
def datagen(*a, **k):
    for item in _datagen(*a, **k):
        img_batch, mel_batch, frames, coords, img_original, f_frames = item
        rec["batches"].append({"img": np.asarray(img_batch), "mel": np.asarray(mel_batch),
                               "coords": np.asarray(coords), "orig": np.asarray(img_original)})
        yield item
I.datagen = datagen
_load_model = I.load_model
def load_model(args, device):
    dnet, model = _load_model(args, device)
    class Recorded(torch.nn.Module):
        def __init__(self, inner):
            super().__init__(); self.inner = inner
        def forward(self, mel, img, ref):
            torch.manual_seed(1000 + len(rec["enet"]))
            pred, low = self.inner(mel, img, ref)
            rec["enet"].append((pred.detach().numpy().copy(), low.detach().numpy().copy()))
            return pred, low
    return dnet, Recorded(model)
I.load_model = load_model
_enh = I.GFPGANer.enhance
def enhance(self, img, *a, **k):
    torch.manual_seed(2000 + len(rec["gfpgan_in"]))
    rec["gfpgan_in"].append(np.asarray(img).copy())
    out = _enh(self, img, *a, **k)
    rec["gfpgan_out"].append(np.asarray(out[2]).copy())
    return out
I.GFPGANer.enhance = enhance
_VideoWriter = cv2.VideoWriter
class Writer:
    def __init__(self, *a):
        self.inner = _VideoWriter(*a)
    def write(self, frame):
        rec["final"].append(np.asarray(frame).copy()); self.inner.write(frame)
    def release(self):
        self.inner.release()
I.cv2.VideoWriter = Writer

failure = None
try:
    I.main()
except Exception as exc:  # keep the stages recorded before the failure
    import traceback
    traceback.print_exc()
    failure = exc

base = os.path.basename(clip)
temp = os.path.join(os.getcwd(), "temp")
makers = {"crop": lambda: rec["crop"], "quad": lambda: rec["quad"], "cropped_shape": lambda: np.array(rec["cropped_shape"]),
       "fa_boxes": lambda: np.array([b if b is not None else [-1] * 4 for b in rec["fa_boxes"]], np.float64),
       "lm": lambda: rec["lm_calls"][0], "lm_refs": lambda: rec["lm_calls"][1],
       "coeffs": lambda: np.load(os.path.join(temp, base + "_coeffs.npy")),
       "dnet_bgr": lambda: np.load(os.path.join(temp, base + "_stablized.npy")),
       "lnet_boxes": lambda: np.array(rec["lnet_boxes"], np.int64),
       "gpen_in_bgr": lambda: np.stack([a for a, _ in rec["gpen_calls"]]),
       "gpen_out_bgr": lambda: np.stack([b for _, b in rec["gpen_calls"]]),
       "gpen_det": lambda: np.stack([d for c, d in rec["det"] if c == "gpen_ref"]),
       "gpen_face_mask": lambda: np.stack([m for c, m in rec["parse"] if c == "gpen_ref"]),
       "lnet_img": lambda: np.concatenate([b["img"] for b in rec["batches"]]),
       "lnet_mel": lambda: np.concatenate([b["mel"] for b in rec["batches"]]),
       "coords": lambda: np.concatenate([b["coords"] for b in rec["batches"]]),
       "enet_pred": lambda: np.concatenate([p for p, _ in rec["enet"]]),
       "enet_low_res": lambda: np.concatenate([l for _, l in rec["enet"]]),
       "gfpgan_in_bgr": lambda: np.stack(rec["gfpgan_in"]), "gfpgan_out_bgr": lambda: np.stack(rec["gfpgan_out"]),
       "gfpgan_det": lambda: np.stack([d for c, d in rec["det"] if c == "gfpgan"]),
       "mouth_mask": lambda: np.stack([m for c, m in rec["parse"] if c == "mouth"]),
       "compose_in_bgr": lambda: np.stack([c[0] for c in rec["compose_calls"]]),
       "compose_ori_bgr": lambda: np.stack([c[1] for c in rec["compose_calls"]]),
       "compose_bbox": lambda: np.stack([c[2] for c in rec["compose_calls"]]).astype(np.int64),
       "compose_det": lambda: np.stack([d for c, d in rec["det"] if c == "compose"]),
       "compose_face_mask": lambda: np.stack([m for c, m in rec["parse"] if c == "compose"]),
       "final_bgr": lambda: np.stack(rec["final"]),
       "template_used": lambda: np.array(rec.get("template_used", 0))}
out = {}
for key, make in makers.items():
    try:
        out[key] = make()
    except Exception as exc:  # a stage the run did not reach
        print("not dumped:", key, type(exc).__name__)
np.savez(os.path.join(work, "dump.npz"), **out)
print("dumped", {k: v.shape for k, v in out.items()})
if failure is not None:
    sys.exit(f"official run failed after the dumped stages: {failure!r}")
''')


def make_clip(clip: Path, audio: Path, frames: int, samples: int, work: Path) -> tuple[Path, Path, "object"]:
    """First ``frames`` frames (PyAV, RGB) -> lossless PNG-in-AVI; audio cut to ``samples`` (int16 wav)."""
    import av
    import numpy as np
    import soundfile as sf

    with av.open(str(clip)) as container:
        rgb = []
        for frame in container.decode(video=0):
            rgb.append(frame.to_ndarray(format="rgb24"))
            if len(rgb) == frames:
                break
    rgb = np.stack(rgb)
    video = work / "clip.avi"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("png", rate=25)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], "rgb24"
        for image in rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    wav, rate = sf.read(str(audio), dtype="int16")
    if rate != 16000 or wav.ndim != 1:
        sys.exit(f"error: {audio}: expected 16 kHz mono, got {rate} Hz, shape {wav.shape}")
    cut = work / "audio.wav"
    sf.write(str(cut), wav[:samples], 16000, subtype="PCM_16")
    return video, cut, rgb


def pasted_frames(rgb, pred_u8, coords):
    """inference.py's GFPGAN input: the frame (BGR) with ``cv2.resize(p.astype(uint8))`` pasted at ``coords``."""
    import cv2
    import numpy as np

    out = []
    for frame, pred, (y1, y2, x1, x2) in zip(rgb, pred_u8, coords):
        ff = np.ascontiguousarray(frame[..., ::-1]).copy()
        ff[y1:y2, x1:x2] = cv2.resize(np.ascontiguousarray(pred.transpose(1, 2, 0)), (int(x2 - x1), int(y2 - y1)))
        out.append(ff)
    return np.stack(out)


def write_fixtures(dump: dict, rgb, fixtures: Path, meta: dict) -> None:
    """The small committed subset: uint8 images, large stages on the first and last frame only.

    ``enet_pred`` is stored as the official turns it into pixels
    (``(clamp(pred, 0, 1) * 255).astype(uint8)``, truncation). Not stored, because they
    are rebuilt exactly from what is (checked here): ``compose_ori_bgr`` (the clip
    frames), ``gfpgan_in_bgr`` (:func:`pasted_frames`), ``gpen_in_bgr`` (the D-Net
    frames), and the masked lower half of the L-Net face input (zeros).
    """
    import hashlib

    import numpy as np

    u8 = lambda x: np.clip(np.rint(x), 0, 255).astype(np.uint8)  # noqa: E731
    n = len(dump["lm"])
    keep = [0, n - 1]
    whole = ["crop", "quad", "fa_boxes", "lm", "lm_refs", "coeffs", "lnet_boxes", "coords", "template_used",
             "gpen_det", "gfpgan_det", "compose_det", "compose_bbox"]
    kept = ["dnet_bgr", "gpen_out_bgr", "gpen_face_mask", "enet_low_res", "gfpgan_out_bgr",
            "mouth_mask", "compose_in_bgr", "compose_face_mask", "final_bgr"]
    if "compose_ori_bgr" in dump and not np.array_equal(dump["compose_ori_bgr"], rgb[: n, :, :, ::-1]):
        sys.exit("error: the official compose's original frames are not the clip's frames")
    if "gpen_in_bgr" in dump and not np.array_equal(dump["gpen_in_bgr"], dump["dnet_bgr"][: len(dump["gpen_in_bgr"])]):
        sys.exit("error: the official reference enhancement did not get the D-Net frames")
    small = {"frames_sha256": np.array(hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest()),
             "keep": np.array(keep)}
    small.update({k: dump[k] for k in whole if k in dump})
    small.update({k: dump[k][keep] for k in kept if k in dump})
    if "lnet_mel" in dump:
        small["lnet_mel"] = dump["lnet_mel"].astype(np.float32)
    if "lnet_img" in dump:
        face = u8(dump["lnet_img"][keep, :, :, :3] * 255)
        if face[:, face.shape[1] // 2:].any():
            sys.exit("error: the official L-Net face input is not masked below the middle")
        small["lnet_face_top_bgr"] = face[:, : face.shape[1] // 2]
        small["lnet_ref_bgr"] = u8(dump["lnet_img"][keep, :, :, 3:] * 255)
    if "enet_pred" in dump:
        small["enet_pred_u8"] = (np.clip(dump["enet_pred"][keep], 0, 1) * 255.0).astype(np.uint8)
        pasted = pasted_frames(rgb[keep], small["enet_pred_u8"], dump["coords"][keep])
        if "gfpgan_in_bgr" in dump and not np.array_equal(pasted, dump["gfpgan_in_bgr"][keep]):
            sys.exit("error: the official GFPGAN input is not the clip frame with the E-Net prediction pasted")
    if "enet_low_res" in small:
        small["enet_low_res"] = small["enet_low_res"].astype(np.float32)
    fixtures.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(fixtures / "stages.npz", **small)
    (fixtures / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="folder written by prepare_official.py")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (outside the repository)")
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--audio", type=Path, required=True, help="16 kHz mono wav")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--audio_samples", type=int, default=9600)
    parser.add_argument("--fixtures", type=Path, help="write the small committed subset here")
    parser.add_argument("--reuse_dump", action="store_true",
                        help="write the fixtures from WORK/dump.npz of an earlier run (the run takes ~25 min)")
    args = parser.parse_args(argv)
    import numpy as np

    official, work = args.official.resolve(), args.work.resolve()
    if not (official / "code" / "inference.py").is_file():
        sys.exit(f"error: {official} has no code/inference.py; run prepare_official.py first")
    work.mkdir(parents=True, exist_ok=True)
    video, wav, rgb = make_clip(args.clip.resolve(), args.audio.resolve(), args.frames, args.audio_samples, work)
    if args.reuse_dump and (work / "dump.npz").is_file():
        returncode = json.loads((work / "run.json").read_text())["exit_code"] if (work / "run.json").is_file() else 0
    else:
        (work / "driver.py").write_text(DRIVER)
        env = dict(os.environ, TORCH_HOME=str(official / "torch_home"), PYTHONPATH=str(official / "site"),
                   CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        tmp = f"stages_{os.getpid()}"
        (work / "dump.npz").unlink(missing_ok=True)
        run = subprocess.run([sys.executable, str(work / "driver.py"), str(work), str(video), str(wav), tmp],
                             cwd=official / "code", env=env)
        returncode = run.returncode
        (work / "run.json").write_text(json.dumps({"exit_code": returncode}))
        if not (work / "dump.npz").is_file():
            sys.exit(f"error: the official run failed before any stage was dumped (exit {returncode})")
    dump = dict(np.load(work / "dump.npz"))
    if args.fixtures is not None:
        meta = {"clip": str(args.clip), "audio": str(args.audio), "frames": args.frames,
                "audio_samples": args.audio_samples, "fps": 25, "seed": 0,
                "official": (official / "PATCHES.md").read_text().splitlines()[0],
                "enet_seed": "torch.manual_seed(1000 + batch index) before each L-Net/E-Net call",
                "gfpgan_seed": "torch.manual_seed(2000 + frame index) before each GFPGAN call",
                "official_exit_code": returncode,
                "shapes": {k: list(v.shape) for k, v in dump.items()}}
        write_fixtures(dump, rgb, args.fixtures, meta)
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
