"""The batched on-device compose (the CUDA path's) equals the CPU compose, run here on CPU with small seeded nets."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from talkingface.accel.device_compose import DeviceComposer, soft_paste_mask, warp_affine
from talkingface.face import gfpgan, parsing, restore
from talkingface.face.dlib_detect import DlibFivePointDetector
from talkingface.models.video_retalking import face_parts
from talkingface.models.video_retalking.pipeline import VideoReTalkingPipeline


@pytest.fixture(scope="module")
def scene():
    face = np.ascontiguousarray(data.astronaut())
    frame = np.full((360, 640, 3), 90, np.uint8)
    frame[30:330, 170:470] = cv2.resize(face[:300, 100:400], (300, 300))
    detector = DlibFivePointDetector()
    boxes, _ = detector(frame)
    assert len(boxes) == 1
    x1, y1, x2, y2 = boxes[0][:4].astype(int)
    box = (y1, min(360, y2 + 20), x1, x2)  # y1, y2, x1, x2 as the pipeline's face boxes (pads 0,20,0,0)
    rng = np.random.default_rng(0)
    crop = frame[box[0]:box[1], box[2]:box[3]]
    pred = np.clip(cv2.resize(crop, (384, 384)).astype(int) + rng.integers(-25, 25, (384, 384, 3)), 0, 255)
    return frame, pred.astype(np.uint8), box, detector


def _cpu_pipeline(restorer, parse_net, detector):
    """The CPU compose of the pipeline (compose_frame over face_parts' callables) with the given nets."""
    def restore_frame(frame, box):
        y1, y2, x1, x2 = box
        return restorer.enhance(frame, only_center_face=True, paste_back=True, near=((x1 + x2) / 2, (y1 + y2) / 2))

    parts = SimpleNamespace(
        restore=restore_frame,
        parse_labels=lambda image: parsing.parse_labels(parse_net, image),
        blend_region=lambda a, b, m, box, levels=10: face_parts.blend_in_region(a, b, m, box, levels),
        face_blend=None)

    def face_blend(generated, original, box, face):  # face_parts.build's closure, same steps
        y1, y2, x1, x2 = box
        mask = np.zeros(original.shape[:2], np.float32)
        mask[y1:max(y1 + 1, y2 - 5), x1:x2] = face[: max(1, y2 - 5 - y1)]
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1, sigmaY=1)
        return face_parts.blend_in_region(generated, original, mask, box, levels=6)

    parts.face_blend = face_blend
    pipe = VideoReTalkingPipeline.__new__(VideoReTalkingPipeline)
    pipe.parts = parts
    pipe.options = SimpleNamespace(compose="box")  # the on-device compose is the box compose
    return pipe


def test_warp_affine_equals_cv2(scene):
    frame = scene[0]
    m = cv2.getRotationMatrix2D((300, 170), 12, 1.3)
    ref = cv2.warpAffine(frame, m, (256, 200), borderMode=cv2.BORDER_CONSTANT, borderValue=(132, 133, 135))
    ours = warp_affine(torch.from_numpy(frame).permute(2, 0, 1)[None].float(), m[None], (256, 200),
                       (132, 133, 135))[0].permute(1, 2, 0).round().numpy()
    diff = np.abs(ours - ref)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 4  # cv2 quantises coordinates to 1/32 px


def test_soft_paste_mask_equals_cpu():
    inverse = cv2.invertAffineTransform(cv2.getRotationMatrix2D((256, 256), 8, 2.2))
    soft, eroded = restore.soft_paste_mask(inverse, 512, 360, 640)
    t_soft, t_eroded = soft_paste_mask(inverse, 512, 360, 640, torch.device("cpu"))
    assert np.abs(t_eroded[0, 0].numpy() - eroded).mean() < 0.01
    assert np.abs(t_soft[0, 0].numpy() - soft).max() < 0.05 and soft.sum() > 1000


def test_device_compose_equals_cpu_compose(scene):
    frame, pred, box, detector = scene
    net = gfpgan.load_gfpgan(weights="seeded", size=64, narrow=0.125, num_style_feat=64)
    restorer = restore.GFPGANRestorer(net, detector)
    parse_net = parsing.load_parsenet(weights="seeded", size=64)
    cpu = _cpu_pipeline(restorer, parse_net, detector).compose_frame(frame, pred, np.asarray(box))
    composer = DeviceComposer(restorer, parse_net, None, "cpu")
    ours = composer([frame, frame], np.stack([pred, pred]), [box, box])
    assert ours.shape == (2,) + frame.shape and ours.dtype == np.uint8
    assert np.array_equal(ours[0], ours[1])
    diff = np.abs(ours[0].astype(int) - cpu.astype(int))
    changed = np.abs(cpu.astype(int) - frame.astype(int)).sum(2) > 0
    assert changed.sum() > 2000  # the compose really edits the face region
    assert diff.mean() < 0.5 and np.percentile(diff[changed], 99) <= 12, (diff.mean(), diff.max())
    assert np.array_equal(ours[0][:, :100], frame[:, :100])  # far from the face: the input, exactly
