"""Deterministic seeded weights (protocol ``seeded-v1``) and strict loading.

Checkpoints cannot be downloaded on machines without internet, so tests and
``weights: seeded`` runs fill the real modules with reproducible values. The
protocol is fixed (see shared/parity/README.md) so that a reference module
filled the same way produces the same numbers: that is our parity evidence.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from talkingface.errors import CheckpointError

log = logging.getLogger(__name__)

SEEDED_PROTOCOL = "seeded-v1"

#: ``key pattern -> {"gain": g}`` or ``{"value": c}`` (fnmatch on the full key).
Overrides = Mapping[str, Mapping[str, float]]


def key_rng(seed: int, key: str) -> np.random.Generator:
    """The per-entry generator of ``seeded-v1``: independent of fill order."""
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def seeded_input(name: str, shape: tuple[int, ...], seed: int = 0, *,
                 low: float | None = None, high: float | None = None) -> np.ndarray:
    """An input drawn as the parity fixtures draw theirs (key ``input:<name>``).

    Standard normal by default; uniform in ``[low, high)`` when a range is given.
    """
    rng = key_rng(seed, f"input:{name}")
    if low is not None and high is not None:
        return rng.uniform(low, high, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _match_override(key: str, overrides: Overrides | None) -> Mapping[str, float] | None:
    if not overrides:
        return None
    for pattern, spec in overrides.items():
        if fnmatch.fnmatchcase(key, pattern):
            return spec
    return None


def _value_for(key: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int,
               override: Mapping[str, float] | None) -> np.ndarray:
    if override is not None and "value" in override:
        return np.full(shape, float(override["value"]), dtype=np.float64)
    if not (dtype.is_floating_point or dtype.is_complex):
        return np.zeros(shape, dtype=np.float64)
    rng = key_rng(seed, key)
    name = key.rsplit(".", 1)[-1]
    if name == "running_mean":
        return rng.normal(0.0, 0.1, shape)
    if name == "running_var":
        return rng.uniform(0.5, 1.5, shape)
    if name == "weight_v":
        v = rng.standard_normal(shape)
        return v / np.linalg.norm(v)
    if len(shape) >= 2:
        gain = 1.0 if override is None else float(override.get("gain", 1.0))
        fan_in = int(np.prod(shape[1:]))
        return rng.standard_normal(shape) * gain / np.sqrt(fan_in)
    if name.endswith("weight"):
        return 1.0 + rng.normal(0.0, 0.1, shape)
    return rng.normal(0.0, 0.1, shape)


def _spectral_u(w_orig: np.ndarray, v: np.ndarray, u_shape: tuple[int, ...]) -> np.ndarray:
    """``u = W v / |W v|`` with W flattened around the spectral-norm dim."""
    u_size = int(np.prod(u_shape))
    dim = 0 if w_orig.shape[0] == u_size else 1
    w = np.moveaxis(w_orig, dim, 0).reshape(u_size, -1)
    u = w @ v.reshape(-1)
    return (u / np.linalg.norm(u)).reshape(u_shape)


def seeded_state_dict(module: nn.Module, seed: int = 0,
                      overrides: Overrides | None = None) -> dict[str, torch.Tensor]:
    """A state dict with the keys/shapes/dtypes of ``module`` filled by ``seeded-v1``."""
    reference = module.state_dict()
    values: dict[str, np.ndarray] = {}
    for key, tensor in reference.items():
        if key.rsplit(".", 1)[-1] == "weight_u":
            continue  # depends on weight_orig and weight_v: second pass
        values[key] = _value_for(key, tuple(tensor.shape), tensor.dtype, seed,
                                 _match_override(key, overrides))
    for key, tensor in reference.items():
        if key.rsplit(".", 1)[-1] != "weight_u":
            continue
        prefix = key[: -len("weight_u")]
        override = _match_override(key, overrides)
        if override is not None and "value" in override:
            values[key] = _value_for(key, tuple(tensor.shape), tensor.dtype, seed, override)
            continue
        try:
            w_orig, v = values[prefix + "weight_orig"], values[prefix + "weight_v"]
        except KeyError as exc:
            raise ValueError(f"{key}: spectral norm without {exc.args[0]}") from None
        values[key] = _spectral_u(w_orig, v, tuple(tensor.shape))
    return {
        key: torch.from_numpy(np.asarray(values[key])).to(tensor.dtype).reshape(tensor.shape)
        for key, tensor in reference.items()
    }


def fill_seeded_(module: nn.Module, seed: int = 0, overrides: Overrides | None = None) -> nn.Module:
    """Fill ``module`` in place with ``seeded-v1`` weights; returns it for chaining."""
    load_strict(module, seeded_state_dict(module, seed, overrides), source=f"{SEEDED_PROTOCOL}(seed={seed})")
    return module


def _preview(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that names keys, shapes and the file.

    PyTorch's own message is a wall of text; a user with a wrong file needs to know
    which file and whether it is the wrong network or a truncated download.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs module {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_preview(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_preview(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): {_preview(mismatched, 4)}")
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: " + "; ".join(parts),
            hint="the file is for another network or is damaged; run "
                 "`python -m talkingface checkpoints verify` and re-download it",
        )
    module.load_state_dict(dict(state_dict), strict=True)


def torch_load(path: str | Path, *, weights_only: bool = True) -> Any:
    """Load a checkpoint on CPU; a damaged file becomes a :class:`CheckpointError`."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file not found: {path}",
                              hint="run `python -m talkingface checkpoints download`") from None
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="the file is truncated or not a PyTorch checkpoint; run "
                 "`python -m talkingface checkpoints verify` and re-download it",
        ) from None


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Drop ``prefix`` (e.g. ``module.`` from DataParallel) from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def complete_batchnorm_counters(module: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``num_batches_tracked`` where a pre-0.4 file lacks it.

    ``syncnet_v2.model`` and the FID Inception file predate that buffer; PyTorch
    itself fills it in when loading such files (it is unused in eval mode). Every
    real weight is still checked strictly.
    """
    state = dict(state)
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    return state


def load_metric_net(net: nn.Module, *, name: str, path: str | Path | None, weights: str, seed: int,
                    root: str | Path | None, device: str | torch.device,
                    read: Callable[[Path], Mapping[str, torch.Tensor]]) -> nn.Module:
    """A metric network in eval mode: the official file (strict; ``path`` or the manifest's ``name``) or
    ``seeded-v1``. It carries ``weights_info`` (file + sha256, or the seeded protocol), which the
    results files report so every number says which weights made it."""
    if weights == "seeded":
        load_strict(net, seeded_state_dict(net, seed), source=f"{SEEDED_PROTOCOL}(seed={seed})")
        net.weights_info = {"weights": "seeded", "protocol": SEEDED_PROTOCOL, "seed": seed}
    else:
        from talkingface.weights.manifest import checkpoint_path, sha256_of

        path = Path(path) if path is not None else checkpoint_path(name, root)
        load_strict(net, complete_batchnorm_counters(net, read(path)), source=path)
        net.weights_info = {"weights": "official", "file": str(path), "sha256": sha256_of(path)}
    return net.eval().to(device)
