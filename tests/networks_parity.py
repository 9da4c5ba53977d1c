"""Shared helpers for the D-Net / L-Net / E-Net parity tests (fixtures made from the official modules).

See tests/fixtures/parity/README.md for how the fixtures were produced.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from talkingface.weights.seeded import fill_seeded_, seeded_input

PARITY = Path(__file__).resolve().parent / "fixtures" / "parity"
TOLERANCE = 1e-4


def load_fixture(name: str) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(PARITY / f"{name}.seed0.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    return arrays, meta


def reference_keys(name: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in json.loads((PARITY / f"{name}.keys.json").read_text()).items()}


def module_keys(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_sha(meta: dict, name: str, array: np.ndarray) -> None:
    """A redrawn input must be byte-identical to the one the fixture was made with."""
    expected = meta["inputs"][name]["sha256"]
    assert hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() == expected, f"input {name} differs"


def max_diff(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape, (tuple(ours.shape), ref.shape)
    return float(np.abs(ours.detach().cpu().numpy() - ref).max())


class Capture:
    """Forward hook that keeps a submodule's latest output (the fixtures store the same intermediates)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.value: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        self.value = output.detach().clone()

    def remove(self) -> None:
        self.handle.remove()


@functools.lru_cache(maxsize=1)
def seeded_lnet():
    """The L-Net filled by seeded-v1 (seed 0), shared by the L-Net and E-Net tests (filling takes seconds).

    Tests must leave it as they found it (restore any perturbed entry).
    """
    from talkingface.models.video_retalking.networks import LNet

    return fill_seeded_(LNet(), 0).eval()


def lnet_face(meta: dict) -> np.ndarray:
    """The L-Net fixture's face stack (1, 6, T=2, 96, 96): masked target | reference."""
    face = seeded_input("lnet_face", (1, 6, 2, 96, 96), meta["seed"], low=0, high=1)
    face[:, :3, :, 48:] = 0.0
    check_sha(meta, "face", face)
    return face


def enet_inputs(meta: dict) -> tuple[np.ndarray, list[torch.Tensor]]:
    """The E-Net fixture's face stack (1, 6, 384, 384) and its four explicit noise maps."""
    face = seeded_input("enet_face", (1, 6, 384, 384), meta["seed"], low=0, high=1)
    face[:, :3, 192:] = 0.0
    check_sha(meta, "face", face)
    shapes = [(1, 1, 200, 200)] * 2 + [(1, 1, 400, 400)] * 2
    noises = []
    for i, shape in enumerate(shapes):
        noise = seeded_input(f"enet_noise{i}", shape, meta["seed"])
        check_sha(meta, f"noise{i}", noise)
        noises.append(torch.from_numpy(noise))
    return face, noises
