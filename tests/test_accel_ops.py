"""The CUDA path's torch image ops equal the OpenCV/numpy ones of the CPU path (run on CPU)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from talkingface.accel import torch_ops
from talkingface.face.blend import laplacian_blend
from talkingface.models.video_retalking.face_parts import blend_in_region


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth structure + texture: exercises every pyramid band."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 80 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 11.0)[..., None] * np.array([1.0, 0.6, -0.8])
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.float32)


#: the CUDA path's ops run on the GPU when one is present (bench/gpu_check.sh runs these there)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _t(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().to(DEVICE)


def _n(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).cpu().numpy()


@pytest.mark.parametrize("shape,size", [((100, 80), (256, 200)), ((512, 512), (173, 141)), ((37, 51), (384, 384))])
def test_resize_equals_cv2_inter_linear(shape, size):
    image = _image(*shape)
    ours = _n(torch_ops.resize(_t(image), size))
    ref = cv2.resize(image, size)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 5e-3  # OpenCV's float32 interpolation weights: 1e-5 of the 0-255 range


@pytest.mark.parametrize("shape", [(64, 64), (45, 77), (3, 5)])
def test_pyramid_steps_equal_cv2(shape):
    image = _image(*shape, seed=1)
    down = cv2.pyrDown(image)
    assert np.abs(_n(torch_ops.pyr_down(_t(image))) - down).max() < 1e-3
    up = cv2.pyrUp(down, dstsize=(shape[1], shape[0]))
    assert np.abs(_n(torch_ops.pyr_up(_t(down), (shape[1], shape[0]))) - up).max() < 1e-3


def test_gaussian_blur_equals_cv2():
    mask = (np.random.default_rng(2).random((120, 90)) > 0.5).astype(np.float32)
    ref = cv2.GaussianBlur(mask, (0, 0), sigmaX=1, sigmaY=1)
    ours = torch_ops.gaussian_blur(torch.from_numpy(mask)[None, None].to(DEVICE), 1.0)[0, 0].cpu().numpy()
    assert np.abs(ours - ref).max() < 1e-5


@pytest.mark.parametrize("levels", [6, 10])
def test_laplacian_blend_equals_numpy_blend(levels):
    a, b = _image(512, 512, 3), _image(512, 512, 4)
    mask = np.zeros((512, 512), np.float32)
    cv2.circle(mask, (260, 300), 120, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 5)
    ref = laplacian_blend(a, b, mask, levels)
    ours = _n(torch_ops.laplacian_blend(_t(a), _t(b), torch.from_numpy(mask)[None, None].to(DEVICE), levels))
    assert np.abs(ours - ref).max() < 0.05  # float32 summation order only
    assert np.abs(ours - b).max() > 50  # the blend really mixes the two


def test_blend_in_region_equals_cpu_path():
    frame_a, frame_b = _image(360, 640, 5).astype(np.uint8), _image(360, 640, 6).astype(np.uint8)
    box = (100, 260, 250, 400)
    mask = np.zeros((360, 640), np.float32)
    mask[140:240, 280:370] = 1.0
    ref = blend_in_region(frame_a, frame_b, mask, box, levels=10)
    ours = torch_ops.blend_in_region(_t(frame_a.astype(np.float32))[0], _t(frame_b.astype(np.float32))[0],
                                     torch.from_numpy(mask).to(DEVICE), box, levels=10).cpu()
    diff = np.abs(ours.permute(1, 2, 0).numpy().astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1  # uint8 rounding of a float difference
    assert (diff > 0).mean() < 0.01
    assert np.array_equal(ours.permute(1, 2, 0).numpy()[:40], frame_b[:40])  # outside the region: b exactly
