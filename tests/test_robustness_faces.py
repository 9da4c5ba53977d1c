"""Robustness matrix, face rows (docs/ROBUSTNESS.md): no face, a face in some frames, two faces,
a tiny face, a profile face.

Media are built here from a real face photo (skimage's astronaut) pasted on grey
frames; detection is dlib's real HOG detector and 68-point predictor (offline
weights of face_recognition_models), so every number below was measured, not
assumed.
"""
from __future__ import annotations

import copy
import logging
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from talkingface.errors import ConfigError, NoFaceError
from talkingface.face import select
from talkingface.face.croper import Croper
from talkingface.face.boxes import face_boxes
from talkingface.face.dlib_detect import DlibBoxDetector, dlib_detect
from talkingface.face.landmarks import DlibLandmarks
from talkingface.face.s3fd import S3FDDetector

REPO = Path(__file__).resolve().parent.parent
HEAD = data.astronaut()[40:260, 120:330]  # the astronaut's head and hair, 210 px wide
GREY = 110


def head(width: int, squeeze: float = 1.0) -> np.ndarray:
    """The head scaled to ``width`` px (aspect kept), then squeezed horizontally by ``squeeze``."""
    height = round(HEAD.shape[0] * width / HEAD.shape[1])
    return cv2.resize(HEAD, (max(1, round(width * squeeze)), height), interpolation=cv2.INTER_AREA)


def frame(faces=(), size=(200, 320)) -> np.ndarray:
    """A grey frame with heads pasted at (x, y, width[, squeeze]) or given images at (x, y, image)."""
    out = np.full((*size, 3), GREY, np.uint8)
    for x, y, what, *rest in faces:
        image = what if isinstance(what, np.ndarray) else head(what, *rest)
        out[y:y + image.shape[0], x:x + image.shape[1]] = image
    return out


def centre_x(box) -> float:
    return (box[0] + box[2]) / 2


@pytest.fixture(scope="module")
def croper() -> Croper:
    return Croper()


# ---------------------------------------------------------------------------------------------- face_select rules
def test_select_rules_on_one_image():
    dets = np.array([[10, 10, 60, 60, 0.9],     # left, 50 px
                     [200, 20, 280, 100, 0.8],  # right, 80 px (largest)
                     [120, 90, 170, 140, 0.7],  # middle of a 320x200 frame
                     [130, 0, 230, 100, 0.1]])  # biggest box, but a weak hit: not a face
    size = (200, 320)
    assert select.pick(dets, None, size) == 0  # the reference: best score
    assert [select.pick(dets, r, size) for r in ("largest", "center", "left", "right")] == [1, 2, 0, 1]
    assert [select.pick(dets, i, size) for i in (0, 1, 2, 3)] == [0, 2, 1, None]  # counted from the left
    assert select.pick(np.zeros((0, 5)), "largest", size) is None
    assert select.parse_rule("LEFT") == "left" and select.parse_rule("1") == 1 and select.parse_rule(2) == 2
    for bad in ("biggest", -1, True):
        with pytest.raises(ConfigError, match="face_select"):
            select.parse_rule(bad)


def _det(x, y, w, score=1.0):
    return [x, y, x + w, y + w, score]


def test_one_person_per_clip_not_one_face_per_frame():
    """A: left, 50 px, moving. B: right, 46/52 px alternating, so per-frame 'largest' flips between them."""
    per_frame = []
    for t in range(8):
        dets = [] if t in (3, 4) else [_det(20 + t, 40, 50)]  # A is not detected in frames 3-4
        dets.append(_det(200, 40, 52 if t % 2 else 46))
        per_frame.append(np.array(dets, np.float64))
    size = (200, 320)
    per_frame_largest = [per_frame[t][select.pick(per_frame[t], "largest", size)] for t in range(8)]
    assert [centre_x(b) > 160 for b in per_frame_largest] == [False, True, False, True, True, True, False, True]
    left = select.choose_track(per_frame, "left", size)
    assert [b if b is None else b[0] for b in left] == [20, 21, 22, None, None, 25, 26, 27]  # a gap, never B
    assert select.choose_track(per_frame, "largest", size) == left  # A's median size 50 > B's 49
    assert all(b is not None and b[0] == 200 for b in select.choose_track(per_frame, "right", size))
    assert select.choose_track(per_frame, 1, size)[0][0] == 200
    with pytest.raises(NoFaceError, match="only 2 face"):
        select.choose_track(per_frame, 2, size)
    # an anchor (the croper's box) wins over the rule: the box stage follows the crop stage
    anchored = select.choose_track(per_frame, "left", size, anchor=(180, 20, 280, 120))
    assert all(b is not None and b[0] == 200 for b in anchored)


def test_a_person_who_moves_during_a_gap_stays_one_person():
    per_frame = [np.array([_det(10, 30, 60)]), np.array([_det(12, 30, 60)]), np.zeros((0, 5)), np.zeros((0, 5)),
                 np.array([_det(150, 30, 60)]), np.array([_det(152, 30, 60)]), np.array([_det(154, 30, 60)])]
    assert len(select.build_tracks(per_frame)) == 2  # no overlap across the gap: two tracks...
    chosen = select.choose_track(per_frame, "left", (200, 320))
    assert [b is None for b in chosen] == [False, False, True, True, False, False, False]  # ...one person
    assert chosen[0][0] == 10 and chosen[6][0] == 154


def test_face_select_config_key(tmp_path):
    from talkingface.config import load_config
    from talkingface.models.video_retalking.pipeline import CLIP_OPTIONS, PipelineOptions

    assert load_config("video_retalking", None, (), {})["face_select"] is None  # the official: best-scoring
    config = load_config("video_retalking", None, (), {"face_select": 1})
    assert config["face_select"] == "1" and select.parse_rule(config["face_select"]) == 1
    options = PipelineOptions.from_config(load_config("video_retalking", None, (), {"face_select": "right"}), None)
    assert options.face_select == "right" and "face_select" in CLIP_OPTIONS  # part of every cached stage's key
    layer = tmp_path / "bad.yaml"
    layer.write_text("face_select: biggest\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*face_select.*biggest"):
        load_config("video_retalking", None, [str(layer)], {})


# ---------------------------------------------------------------------------------------------- two faces
def with_rule(croper: Croper, rule) -> Croper:
    out = copy.copy(croper)  # shares the loaded predictor
    out.select = select.parse_rule(rule)
    return out


def test_two_faces_croper_picks_by_rule(croper):
    """A 180 px and a 120 px head: dlib scores the small one higher (1.59 vs 1.56 at 2x)."""
    two = frame([(20, 20, 180), (240, 60, 120)], size=(240, 400))
    faces = {rule: with_rule(croper, rule).face(two) for rule in (None, "largest", "center", "left", "right", 0, 1)}
    big, small = faces["largest"], faces["right"]
    assert big.tolist() == [71, 55, 147, 131, pytest.approx(1.56, abs=0.01)]
    assert small.tolist() == [273, 84, 326, 137, pytest.approx(1.59, abs=0.01)]
    assert faces[None][0] == small[0]  # the reference (best score) would crop the smaller face
    assert faces["left"][0] == faces[0][0] == big[0] and faces[1][0] == small[0]
    assert faces["center"][0] == big[0]  # its centre (109, 93) is nearer (200, 120) than (300, 110)
    crops, box, _ = with_rule(croper, "largest").crop(two[None])
    assert box[2] < 240  # the crop box holds the big head only
    with pytest.raises(NoFaceError, match="face #2 from the left"):
        with_rule(croper, 2).crop(two[None])


@pytest.fixture(scope="module")
def two_face_clip():
    """Two 150 px heads; the left one drifts right and is hidden in frames 3-4."""
    frames = []
    for t in range(6):
        faces = [(190 - t, 20, 150)] + ([] if t in (3, 4) else [(10 + 3 * t, 20, 150)])
        frames.append(frame(faces, size=(200, 360)))
    return np.stack(frames)


def test_two_faces_every_stage_follows_the_chosen_face(croper, two_face_clip, caplog):
    clip = two_face_clip
    crop = with_rule(croper, "left").crop_clip(clip)
    clx, cly, crx, cry = crop.box
    assert crop.frame_index == 0 and crx < 200  # the left head (x 10..160)
    # box stage anchored on the crop: the left face in every frame, frames 3-4 a gap (not the right face)
    with caplog.at_level(logging.INFO):
        boxes, missing = face_boxes(clip, DlibBoxDetector(select="left"), pads=(0, 0, 0, 0), nosmooth=True,
                                    anchor=crop.box)
    assert missing == [3, 4]
    assert all(centre_x((x1, 0, x2, 0)) < 150 for _, _, x1, x2 in boxes)
    assert np.array_equal(boxes[3], np.rint(boxes[2] + (boxes[5] - boxes[2]) / 3).astype(int))
    assert "2 faces in the clip; using the one inside the face crop" in caplog.text
    assert "no face in 2 of 6 frame(s) (3-4)" in caplog.text
    # a rule applied frame by frame would jump to the right face in frames 3-4
    per_frame = [d[select.pick(d, "left", (200, 360))] for d in DlibBoxDetector().faces(clip)]
    assert [centre_x(d) > 180 for d in per_frame] == [False, False, False, True, True, False]
    # landmarks on the crops: the centred face, which maps back into the left face box of the frame
    lm, lm_missing = DlibLandmarks(select="center")(crop.crops)
    assert lm_missing == [3, 4]
    lx, ly, rx, ry = crop.quad
    eyes = lm[0][36:48].mean(0) * [(rx - lx) / 256, (ry - ly) / 256] + [clx + lx, cly + ly]
    y1, y2, x1, x2 = boxes[0]
    assert x1 < eyes[0] < x2 and y1 < eyes[1] < y2
    # face_select=right: the other person, seen in every frame
    crop_r = with_rule(croper, "right").crop_clip(clip)
    boxes_r, missing_r = face_boxes(clip, DlibBoxDetector(select="right"), pads=(0, 0, 0, 0), nosmooth=True,
                                    anchor=crop_r.box)
    assert missing_r == [] and crop_r.box[0] > 150 and all(x1 > 180 for _, _, x1, _ in boxes_r)


def test_s3fd_boxes_use_the_same_selection():
    """The S3FD detector goes through the same tracker (detections stubbed: seeded S3FD finds no faces)."""
    class Stub(S3FDDetector):
        def __init__(self, select):
            self.select = select

        def detect(self, images):
            return [np.array([_det(200, 40, 80, 0.99), _det(20, 40, 60, 0.98)], np.float32) for _ in images]

    frames = np.zeros((3, 200, 320, 3), np.uint8)
    assert Stub(None).first_faces(frames) == [(200, 40, 280, 120)] * 3  # the reference: best score
    assert Stub("left").first_faces(frames) == [(20, 40, 80, 100)] * 3
    assert Stub("largest").first_faces(frames, anchor=(0, 0, 100, 150)) == [(20, 40, 80, 100)] * 3


# ---------------------------------------------------------------------------------------------- a face in some frames
def test_face_in_some_frames_is_held_interpolated_and_logged(croper, caplog):
    """Frames 0-1 and 4-6 without a face; the face moves 45 px while unseen."""
    faces = {2: 20, 3: 20, 7: 65, 8: 65, 9: 65}
    clip = np.stack([frame([(faces[t], 10, 170)] if t in faces else []) for t in range(10)])
    with caplog.at_level(logging.WARNING):
        boxes, missing = face_boxes(clip, DlibBoxDetector(select="largest"), pads=(0, 0, 0, 0), nosmooth=True)
    assert missing == [0, 1, 4, 5, 6]
    assert "no face in 5 of 10 frame(s) (0-1, 4-6)" in caplog.text
    assert np.array_equal(boxes[0], boxes[2]) and np.array_equal(boxes[1], boxes[2])  # held before the first face
    step = (boxes[7] - boxes[3]) / 4
    assert step[2] > 10  # it moved right
    for k, t in enumerate((4, 5, 6), start=1):  # linear across the gap
        assert np.array_equal(boxes[t], np.rint(boxes[3] + k * step).astype(int))
    # the crop comes from the first frame with a face; landmarks hold their neighbours' values
    found = croper.crop_clip(clip)
    assert found.frame_index == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        lm, lm_missing = DlibLandmarks(select="center")(clip)
    assert lm_missing == [0, 1, 4, 5, 6] and "(0-1, 4-6)" in caplog.text
    assert np.all(lm[:2] == -1)  # the official: "no face" marker before the first detection
    assert np.array_equal(lm[4], lm[3]) and np.array_equal(lm[6], lm[3])
    lm, _ = DlibLandmarks(select="center", gaps="nearest")(clip)
    assert np.array_equal(lm[0], lm[2])  # landmark_gaps: nearest


# ---------------------------------------------------------------------------------------------- tiny face
def test_tiny_face_is_found_with_upsampling(croper):
    """A 48 px head (dlib face box ~22 px): nothing at 1x or 2x, found at 4x."""
    tiny = frame([(100, 90, 48)], size=(256, 256))
    detector = DlibBoxDetector(max_upsample=0)
    assert len(detector.detect(tiny)) == 0 and len(dlib_detect(croper.detector, tiny, 1, 1)) == 0
    x1, y1, x2, y2, _ = DlibBoxDetector().detect(tiny)[0]
    assert 15 <= x2 - x1 <= 30 and 100 <= x1 and x2 <= 148 and 90 <= y1 and y2 <= 90 + 50
    found = croper.crop_clip(np.stack([tiny, tiny]))
    lx, ly, rx, ry = found.quad
    assert found.frame_index == 0 and 30 < rx - lx < 70  # a ~50 px region scaled up to 256
    lm, missing = DlibLandmarks(select="center")(found.crops[:1])
    assert missing == [] and 90 < lm[0][36:48, 1].mean() < 150  # the upscaled face is found on the crop


def test_tinier_face_and_big_frames_give_the_no_face_error(croper):
    smaller = frame([(100, 90, 32)], size=(256, 256))  # 32 px head, ~15 px face: not found even at 4x
    assert len(DlibBoxDetector().detect(smaller)) == 0
    with pytest.raises(NoFaceError, match="upsampled up to 4x"):
        croper.crop(np.stack([smaller] * 2))
    with pytest.raises(NoFaceError, match="face boxes: no face detected in any of the 2 frame"):
        face_boxes(np.stack([smaller] * 2), DlibBoxDetector(select="largest"))
    # 4x is skipped where the upsampled frame would exceed 2048x2048 px: a 1024 px frame stops at 2x
    big = frame([(400, 400, 48)], size=(1024, 1024))
    assert len(dlib_detect(croper.detector, big, 1, 2)) == 0


# ---------------------------------------------------------------------------------------------- profile face
def test_profile_face_is_not_detected_and_becomes_a_gap(croper, caplog):
    """Stand-ins for a profile: the head squeezed to half its width, or its right half cut away."""
    squeezed = frame([(60, 10, 170, 0.5)])
    half = frame([(60, 10, head(170)[:, :85])])
    frontal = frame([(60, 10, 170)])
    for image in (squeezed, half):
        assert len(DlibBoxDetector().detect(image)) == 0 and croper.face(image) is None
    with pytest.raises(NoFaceError, match="no face found in any of the 3 frame"):
        croper.crop(np.stack([squeezed, half, squeezed]))
    # a clip that turns to profile and back: the profile frames are a gap
    clip = np.stack([frontal, frontal, squeezed, half, frontal])
    with caplog.at_level(logging.WARNING):
        boxes, missing = face_boxes(clip, DlibBoxDetector(select="largest"), pads=(0, 0, 0, 0), nosmooth=True)
    assert missing == [2, 3] and "(2-3)" in caplog.text
    assert np.array_equal(boxes[2], boxes[0]) and np.array_equal(boxes[3], boxes[4])  # static face: held
    # a milder turn (squeezed to 70 %) is still found
    assert croper.face(frame([(60, 10, 170, 0.7)])) is not None


# ---------------------------------------------------------------------------------------------- no face
@pytest.fixture(scope="module")
def blank_clip(tmp_path_factory):
    from talkingface.media import write_video, write_wav

    root = tmp_path_factory.mktemp("noface")
    video = root / "empty room.mp4"
    rng = np.random.default_rng(0)
    frames = np.stack([frame([(rng.integers(0, 200), 20, HEAD[:60, :100])]) for _ in range(10)])  # hair, no face
    write_video(video, frames, 25)
    audio = root / "speech.wav"
    write_wav(audio, np.zeros(6400, np.float32))
    return video, audio


def test_no_face_cli_exits_2_fast_without_traceback(blank_clip, tmp_path):
    video, audio = blank_clip
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "talkingface", "infer", "--face", str(video), "--audio",
                           str(audio), "--outfile", str(tmp_path / "out.mp4"), "--weights=seeded",
                           f"--saved_dir={tmp_path}"], capture_output=True, text=True, cwd=REPO, timeout=120)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    assert f"error: {video}: no face found in any of the 10 frame(s)" in proc.stderr
    assert "-> use a video that shows a frontal face" in proc.stderr and "--crop" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "uses SEEDED weights" not in proc.stderr  # no network was built (each load logs that line)
    assert not (tmp_path / "out.mp4").exists()
    assert elapsed < 60  # ~3 s here; loading the networks alone takes ~20 s on this CPU


def test_no_face_debug_raises_before_any_network(blank_clip, tmp_path, monkeypatch):
    from talkingface.cli import module_main
    from talkingface.models.video_retalking import parts

    def no_networks(*args, **kwargs):
        raise AssertionError("networks built for a clip without a face")

    monkeypatch.setattr(parts, "build_parts", no_networks)
    video, audio = blank_clip
    argv = ["infer", "--face", str(video), "--audio", str(audio), "--outfile", str(tmp_path / "o.mp4"),
            "--weights=seeded", f"--saved_dir={tmp_path}", "--log_level=ERROR"]
    with pytest.raises(NoFaceError, match=r"empty room\.mp4: no face found"):
        module_main([*argv, "--debug"])
    assert module_main(argv) == 2
