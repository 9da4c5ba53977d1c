"""Laplacian-pyramid blending: reference parity, exact limits, any size."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkingface.face.blend import laplacian_blend
from talkingface.weights.seeded import seeded_input

FIXTURE = Path(__file__).parent / "fixtures" / "parity" / "LaplacianBlend.seed0.npz"


def _u8(name: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.floor(seeded_input(name, shape, 0, low=0.0, high=256.0)).astype(np.uint8)


@pytest.fixture(scope="module")
def ref() -> dict:
    with np.load(FIXTURE) as z:
        data = {k: z[k] for k in z.files}
    assert json.loads(str(data["meta"]))["tolerance"] == 1e-4
    return data


def test_matches_reference_uint8_inputs(ref):
    """uint8 images: the Gaussian chain is rounded in uint8 at every level, as in the reference."""
    a, b = _u8("blend_a", (64, 64, 3)), _u8("blend_b", (64, 64, 3))
    mask = seeded_input("blend_mask", (64, 64), 0, low=0.0, high=1.0)
    out = laplacian_blend(a, b, mask, 4)
    assert out.dtype == np.float32 and out.shape == (64, 64, 3)
    assert np.abs(out - ref["out_u8"]).max() <= 1e-4
    # rounding the chain in float instead would differ: the dtype rule matters
    assert np.abs(laplacian_blend(a.astype(np.float32), b.astype(np.float32), mask, 4) - ref["out_u8"]).max() > 1e-2


def test_matches_reference_float_inputs(ref):
    a = seeded_input("blend_af", (64, 64, 3), 0, low=0, high=255)
    b = seeded_input("blend_bf", (64, 64, 3), 0, low=0, high=255)
    mask = seeded_input("blend_mask", (64, 64), 0, low=0.0, high=1.0)
    assert np.abs(laplacian_blend(a, b, mask[:, :, None], 6) - ref["out_f"]).max() <= 1e-4


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_all_ones_mask_gives_a_and_all_zeros_gives_b_exactly(dtype):
    a = _u8("blend_a", (48, 80, 3)).astype(dtype)
    b = _u8("blend_b", (48, 80, 3)).astype(dtype)
    out_a = laplacian_blend(a, b, np.ones((48, 80), np.float32), 10)
    out_b = laplacian_blend(a, b, np.zeros((48, 80), np.float32), 10)
    assert np.array_equal(out_a, a.astype(np.float32))
    assert np.array_equal(out_b, b.astype(np.float32))


def test_any_size_and_a_step_mask_takes_each_side():
    """Sizes that are not multiples of 2**levels work; far from the seam each side keeps its image."""
    h, w = 75, 101
    a = np.full((h, w, 3), 200, np.uint8)
    b = np.full((h, w, 3), 40, np.uint8)
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1.0
    out = laplacian_blend(a, b, mask, 5)
    assert out.shape == (h, w, 3)
    assert np.abs(out[:, :20] - 200).max() < 2.0  # the sides differ by 160
    assert np.abs(out[:, -20:] - 40).max() < 2.0
    seam = out[:, w // 2 - 3: w // 2 + 3].mean()
    assert 60 < seam < 180  # a soft transition, not a hard cut


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mask"):
        laplacian_blend(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match="levels"):
        laplacian_blend(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.full((8, 8), 0.5), 0)
