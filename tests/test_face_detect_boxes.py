"""NMS, L-Net face boxes (pads, smoothing, gaps), and the detector/FAN weight loaders."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from talkingface.errors import CheckpointError, ConfigError, NoFaceError
from talkingface.face import fan as fan_mod
from talkingface.face import boxes as face_boxes_mod
from talkingface.face import dlib_detect, retinaface, s3fd, syncnet_s3fd
from talkingface.face.nms import nms
from talkingface.weights.seeded import seeded_state_dict


# ------------------------------------------------------------------ NMS
def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, thr: float, offset: float) -> list[int]:
    """Textbook greedy NMS, one pair at a time, in float64."""
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + offset)
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + offset)
        inter = w * h
        area = lambda r: (r[2] - r[0] + offset) * (r[3] - r[1] + offset)  # noqa: E731
        return inter / (area(a) + area(b) - inter)

    kept: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -scores[k]):
        if all(iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("offset,thr", [(0.0, 0.3), (1.0, 0.3), (0.0, 0.1), (1.0, 0.5)])
def test_nms_equals_brute_force(offset, thr):
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 100, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2))], 1)
    scores = rng.permutation(300) / 300.0 + 0.001  # distinct scores
    keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr, offset=offset).tolist()
    expected = brute_force_nms(boxes, scores, thr, offset)
    assert keep == expected
    assert 10 < len(keep) < 300  # suppression happened, and not everything was suppressed


def test_nms_top_k_and_empty():
    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]])
    scores = torch.tensor([0.2, 0.9, 0.5])
    assert nms(boxes, scores, 0.3).tolist() == [1, 2, 0]
    assert nms(boxes, scores, 0.3, top_k=2).tolist() == [1, 2]
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.3).numel() == 0
    # IoU exactly at the threshold is kept (reference: ovr <= thresh)
    two = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5]])
    assert nms(two, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(two, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]


def test_nms_undefined_iou_and_many_boxes():
    # overflowing boxes (seeded weights decode some at inf): IoU inf / inf is NaN, suppressed as in the numpy
    # references, kept with keep_undefined (torchvision / facexlib)
    inf = float("inf")
    huge = torch.tensor([[0.0, 0, inf, inf], [1, 1, inf, inf]], dtype=torch.float32)
    assert nms(huge, torch.tensor([0.9, 0.8]), 0.4).tolist() == [0]
    assert nms(huge, torch.tensor([0.9, 0.8]), 0.4, keep_undefined=True).tolist() == [0, 1]
    # 2000 float64 boxes, ties in score: the textbook greedy order (stable ties: later index first)
    rng = np.random.default_rng(3)
    xy = np.round(rng.uniform(0, 200, (2000, 2)))
    boxes = np.concatenate([xy, xy + np.round(rng.uniform(2, 30, (2000, 2)))], 1)
    scores = np.round(rng.uniform(0, 1, 2000), 2)
    keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.3, offset=1.0)
    assert keep.dtype == torch.int64
    order = sorted(range(2000), key=lambda k: (-scores[k], -k))
    expected = [order[i] for i in brute_force_nms(boxes[order], scores[order] - np.arange(2000) * 1e-9, 0.3, 1.0)]
    assert keep.tolist() == expected and 100 < len(expected) < 2000


# ------------------------------------------------------------------ L-Net face boxes
class StubDetector:
    def __init__(self, boxes):
        self.boxes = boxes

    def first_faces(self, frames, batch_size=4):
        assert len(frames) == len(self.boxes)
        return list(self.boxes)


def test_smoothing_is_the_reference_in_place_forward_window():
    values = np.array([0, 10, 20, 30, 40, 50, 60])
    boxes = np.repeat(values[:, None], 4, axis=1)
    # worked by hand: windows i..i+4, then the last five (already smoothed) boxes, int truncation
    assert face_boxes_mod.smooth_boxes(boxes)[:, 0].tolist() == [20, 30, 40, 44, 46, 48, 47]
    short = np.repeat(np.array([0, 10, 20])[:, None], 4, axis=1)
    assert face_boxes_mod.smooth_boxes(short)[:, 0].tolist() == [10, 13, 14]  # whole clip as the window


def test_face_boxes_pads_clip_and_interpolate_gaps(caplog):
    frames = np.zeros((6, 100, 120, 3), np.uint8)
    raw = [(10, 20, 50, 60), None, None, (40, 20, 80, 60), (40, 30, 80, 95), None]
    with caplog.at_level("WARNING"):
        boxes, missing = face_boxes_mod.face_boxes(frames, StubDetector(raw), pads=(5, 20, 0, 0), nosmooth=True)
    assert missing == [1, 2, 5]
    assert "1-2, 5" in caplog.text
    # y1, y2, x1, x2: top pad 5, bottom pad 20 clipped at the height, gaps interpolated / held
    assert boxes.tolist() == [[15, 80, 10, 50], [15, 80, 20, 60], [15, 80, 30, 70], [15, 80, 40, 80],
                              [25, 100, 40, 80], [25, 100, 40, 80]]
    smoothed, _ = face_boxes_mod.face_boxes(frames, StubDetector(raw), pads=(5, 20, 0, 0))
    assert np.array_equal(smoothed, face_boxes_mod.smooth_boxes(boxes))


def test_face_boxes_without_any_face_raises():
    with pytest.raises(NoFaceError, match="no face detected in any of the 3 frame"):
        face_boxes_mod.face_boxes(np.zeros((3, 32, 32, 3), np.uint8), StubDetector([None, None, None]))


def test_first_faces_halves_the_batch_on_out_of_memory():
    class Flaky(s3fd.S3FDDetector):
        def __init__(self):
            self.sizes = []

        def detect(self, images):
            self.sizes.append(len(images))
            if len(images) > 1:
                raise torch.OutOfMemoryError("CUDA out of memory")
            return [np.array([[1.5, -2.0, 30.9, 40.2, 0.9]], np.float32)]

    det = Flaky()
    assert det.first_faces(np.zeros((3, 8, 8, 3), np.uint8), batch_size=4) == [(1, 0, 30, 40)] * 3
    assert det.sizes == [3, 2, 1, 1, 1]


def test_dlib_box_detector_finds_the_astronaut():
    from skimage import data

    image = data.astronaut()
    det = dlib_detect.DlibBoxDetector(max_side=256, upsample=1)  # box found at half size, given in frame pixels
    x1, y1, x2, y2 = det.first_faces(image[None])[0]
    eyes_and_mouth = [(201, 102), (246, 141), (224, 103)]  # from the dlib 68 points of the full frame
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in eyes_and_mouth)
    assert 80 < x2 - x1 < 200 and 80 < y2 - y1 < 200
    assert det.first_faces(np.zeros((1, 64, 64, 3), np.uint8)) == [None]


def test_evaluator_s3fd_adapter_uses_the_syncnet_layout():
    """x1 y1 x2 y2 score in frame pixels, best first, only above the threshold: checked on boxes that exist
    (the seeded net fires on a flat grey image), so an adapter that drops or mangles them fails here."""
    from talkingface.evaluation.lse_crop import make_detector

    image = np.full((64, 80, 3), 128, np.uint8)
    det = make_detector("s3fd", weights="seeded", conf_threshold=0.5, scale=1.0)
    boxes = det(image)
    assert boxes.ndim == 2 and boxes.shape[1] == 5 and len(boxes) >= 5
    raw = np.asarray(det.detect_faces(image, conf_th=0.5, scales=[1.0]), np.float64)
    assert np.array_equal(boxes, raw)  # the reference's layout, passed through unchanged
    assert np.all(boxes[:, 4] > 0.5) and np.all(np.diff(boxes[:, 4]) <= 0)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])  # x1 < x2, y1 < y2
    strict = make_detector("s3fd", weights="seeded", conf_threshold=0.55, scale=1.0)(image)
    assert 0 < len(strict) < len(boxes) and np.all(strict[:, 4] > 0.55)
    assert np.array_equal(strict, boxes[boxes[:, 4] > 0.55])  # a threshold, not another detection
    # facedet_scale: the frame is shrunk for the net, the boxes come back in frame pixels (twice the size)
    half = make_detector("s3fd", weights="seeded", conf_threshold=0.5, scale=0.5)(image)
    assert half[0, 4] == pytest.approx(boxes[0, 4], abs=1e-6)
    assert (half[0, 2] - half[0, 0]) / (boxes[0, 2] - boxes[0, 0]) == pytest.approx(2.0, rel=0.05)
    assert det(np.zeros((64, 80, 3), np.uint8)).shape[1] == 5  # any image: a (K, 5) array, K may be 0


# ------------------------------------------------------------------ loaders
def _save(state, path):
    torch.save(state, path)
    return path


def test_s3fd_loader_round_trip_and_wrong_file(tmp_path):
    state = seeded_state_dict(s3fd.S3FD(), 3)
    det = s3fd.load_s3fd(_save(state, tmp_path / "s3fd.pth"))
    assert det.channel_order == "rgb"
    assert all(torch.equal(det.net.state_dict()[k], v) for k, v in state.items())
    wrong = _save(seeded_state_dict(syncnet_s3fd.SyncNetS3FD(), 3), tmp_path / "sfd_face.pth")
    with pytest.raises(CheckpointError, match=r"sfd_face\.pth does not fit S3FD: 65 missing key"):
        s3fd.load_s3fd(wrong)
    with pytest.raises(CheckpointError, match=r"does not fit SyncNetS3FD"):
        syncnet_s3fd.make_syncnet_detector(tmp_path / "s3fd.pth")
    net = syncnet_s3fd.make_syncnet_detector(wrong).net
    assert torch.equal(net.vgg[0].weight, seeded_state_dict(syncnet_s3fd.SyncNetS3FD(), 3)["vgg.0.weight"])


def test_missing_files_give_the_checkpoint_manager_message(tmp_path):
    for load, filename, name in ((s3fd.load_s3fd, "s3fd-619a316812.pth", "s3fd"),
                                 (syncnet_s3fd.make_syncnet_detector, "sfd_face.pth", "syncnet_s3fd"),
                                 (retinaface.load_retinaface, "RetinaFace-R50.pth", "retinaface"),
                                 (fan_mod.load_fan, "2DFAN4-cd938726ad.zip", "fan")):
        with pytest.raises(CheckpointError) as info:
            load(root=tmp_path)
        assert filename in info.value.message and str(tmp_path) in info.value.message
        assert f"python -m talkingface checkpoints download {name}" in info.value.hint


def test_retinaface_loader_strips_module_prefix_and_refuses_other_nets(tmp_path):
    net = retinaface.RetinaFace()
    state = {f"module.{k}": v for k, v in seeded_state_dict(net, 1).items()}
    det = retinaface.load_retinaface(_save(state, tmp_path / "RetinaFace-R50.pth"), confidence_threshold=0.8)
    assert det.confidence_threshold == 0.8
    assert torch.equal(det.net.body.layer4[2].conv3.weight, state["module.body.layer4.2.conv3.weight"])
    with pytest.raises(CheckpointError, match="RetinaFace"):
        retinaface.load_retinaface(_save({"body.conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth"))
    with pytest.raises(ConfigError, match="unknown weights"):
        retinaface.load_retinaface(weights="random")


def test_fan_loads_from_a_torchscript_archive(tmp_path):
    """2DFAN4-*.zip is a TorchScript archive: its state dict goes strictly into our FAN."""
    src = fan_mod.FAN(4).eval()
    src.load_state_dict(seeded_state_dict(src, 2))
    x = torch.rand(1, 3, 64, 64)
    archive = tmp_path / "2DFAN4-test.zip"
    torch.jit.save(torch.jit.trace(src, x), str(archive))
    state = fan_mod.script_archive_state(archive)  # read as data: no TorchScript code runs
    assert list(state) == list(src.state_dict()) and all(torch.equal(v, src.state_dict()[k]) for k, v in state.items())
    net = fan_mod.load_fan(archive)
    with torch.inference_mode():
        assert torch.equal(net(x), src(x))
    plain = _save(src.state_dict(), tmp_path / "fan_state.pth")  # a plain state dict works too
    assert torch.equal(fan_mod.load_fan(plain).l3.weight, src.l3.weight)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w") as z:
        z.writestr("archive/code/__torch__.py", "garbage")
    with pytest.raises(CheckpointError, match="damaged.zip"):
        fan_mod.load_fan(damaged)


def test_nms_undefined_iou_numpy_vs_torchvision_rule():
    """Overflowing boxes give NaN IoUs: py_cpu_nms (GPEN) drops them, torchvision (facexlib) keeps them."""
    from talkingface.face.nms import nms

    inf = float("inf")
    boxes = torch.tensor([[0.0, 0.0, inf, inf], [1.0, 1.0, inf, inf], [0.0, 0.0, 10.0, 10.0]])
    scores = torch.tensor([0.99, 0.98, 0.97])
    assert nms(boxes, scores, 0.4).tolist() == [0, 2]  # box 1: IoU inf/inf = NaN suppresses (ovr <= thresh keeps)
    assert nms(boxes, scores, 0.4, keep_undefined=True).tolist() == [0, 1, 2]


def test_facexlib_flavour_detector_options():
    from talkingface.face.retinaface import FACEXLIB_OPTIONS, load_retinaface

    gpen_like = load_retinaface(weights="seeded")
    facexlib = load_retinaface(weights="seeded", flavour="facexlib")
    assert (gpen_like.confidence_threshold, gpen_like.top_k, gpen_like.downscale_above) == (0.9, 5000, 1500)
    for key, value in FACEXLIB_OPTIONS.items():
        assert getattr(facexlib, key) == value
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    boxes, points = facexlib(image)
    assert len(boxes) and boxes[:, 4].min() > 0.97 and points.shape == (len(boxes), 5, 2)
    with pytest.raises(ValueError, match="flavour"):
        load_retinaface(weights="seeded", flavour="dlib")
