"""Build D-Net / L-Net / E-Net with official or seeded weights.

The official loading rules (``models/__init__.py`` of OpenTalker/video-retalking):

* ``DNet.pt``  -> ``checkpoint["net_G_ema"]``, keys used as they are;
* ``LNet.pth`` -> ``checkpoint["state_dict"]``, ``"module."`` removed from keys;
* ``ENet.pth`` -> ``checkpoint["state_dict"]``, ``"module."`` removed, and every key
  containing ``"low_res"`` ignored: the E-Net's inner L-Net comes from ``LNet.pth``.

The official code loads with ``strict=False``; here every remaining key must
match the module exactly (:func:`talkingface.weights.seeded.load_strict`), so a wrong
or damaged file stops the run with the file and keys named instead of silently
leaving layers random. Files are read on CPU with ``weights_only=True``
(no pickled code); pass ``weights_only=False`` only for a file you trust that
cannot be read otherwise.
"""
from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from talkingface.weights.manifest import checkpoint_path
from talkingface.errors import CheckpointError, ConfigError
from talkingface.models.video_retalking.networks.dnet import DNet
from talkingface.models.video_retalking.networks.enet import ENet
from talkingface.models.video_retalking.networks.lnet import LNet
from talkingface.weights.seeded import (SEEDED_PROTOCOL, complete_batchnorm_counters, fill_seeded_, load_strict,
                                       seeded_state_dict, torch_load)

log = logging.getLogger(__name__)

PathLike = str | Path
Device = str | torch.device


class Networks(NamedTuple):
    """The three networks in eval mode; ``lnet`` is ``enet.low_res`` (one module, not a copy)."""

    dnet: DNet
    lnet: LNet
    enet: ENet


def _load_file(path: Path, weights_only: bool) -> Any:
    """``torch.load`` on CPU; a file refused only because it pickles objects gets its own hint."""
    if weights_only and path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
            if found:
                raise CheckpointError(
                    f"{path}: holds a pickled {found.group(1)} object, which weights_only=True refuses",
                    hint="if this is the official file from a trusted source, load it with weights_only=False",
                ) from None
        except Exception:  # noqa: BLE001 - the shared reader below words every other failure
            pass
    return torch_load(path, weights_only=weights_only)


def _read(path: Path, entry: str, weights_only: bool) -> dict[str, torch.Tensor]:
    """``torch.load(path)[entry]`` on CPU, with errors that say which file and what to do."""
    checkpoint = _load_file(path, weights_only)
    if not isinstance(checkpoint, Mapping) or entry not in checkpoint:
        found = ", ".join(map(str, list(checkpoint)[:8])) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(f"{path}: no '{entry}' entry (found: {found or 'nothing'})",
                              hint="the file is not the official checkpoint for this network; "
                                   "run `python -m talkingface checkpoints verify`")
    state = checkpoint[entry]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: '{entry}' is a {type(state).__name__}, not a state dict",
                              hint="re-download the official file")
    return dict(state)


def _official_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official ``load_checkpoint`` key rule: drop ``low_res`` keys, remove ``module.``."""
    return {key.replace("module.", ""): value for key, value in state.items() if "low_res" not in key}


def _resolve(path: PathLike | None, name: str) -> Path:
    return Path(path) if path is not None else checkpoint_path(name)


def load_dnet(path: PathLike | None = None, *, device: Device = "cpu", weights_only: bool = True) -> DNet:
    """D-Net from ``DNet.pt`` (``["net_G_ema"]``), eval mode, on ``device``."""
    path = _resolve(path, "dnet")
    state = _read(path, "net_G_ema", weights_only)
    net = DNet()
    load_strict(net, complete_batchnorm_counters(net, state), source=path)
    log.info("loaded D-Net from %s", path)
    return net.eval().to(device)


def _load_lnet_cpu(path: Path, weights_only: bool) -> LNet:
    state = _official_keys(_read(path, "state_dict", weights_only))
    net = LNet()
    load_strict(net, complete_batchnorm_counters(net, state), source=path)
    log.info("loaded L-Net from %s", path)
    return net


def load_lnet(path: PathLike | None = None, *, device: Device = "cpu", weights_only: bool = True) -> LNet:
    """L-Net from ``LNet.pth`` (``["state_dict"]``, ``module.`` removed), eval mode, on ``device``."""
    return _load_lnet_cpu(_resolve(path, "lnet"), weights_only).eval().to(device)


def load_enet(enet_path: PathLike | None = None, lnet_path: PathLike | None = None, *,
              device: Device = "cpu", weights_only: bool = True) -> ENet:
    """E-Net from ``ENet.pth`` with its inner L-Net (``low_res``) from ``LNet.pth``, as the official code does."""
    enet_path, lnet_path = _resolve(enet_path, "enet"), _resolve(lnet_path, "lnet")
    state = _official_keys(_read(enet_path, "state_dict", weights_only))
    net = ENet(lnet=_load_lnet_cpu(lnet_path, weights_only))
    # the low_res entries are the L-Net just loaded: only the E-Net's own keys are checked against the file
    state.update({f"low_res.{k}": v for k, v in net.low_res.state_dict().items()})
    load_strict(net, complete_batchnorm_counters(net, state), source=enet_path)
    log.info("loaded E-Net from %s", enet_path)
    return net.eval().to(device)


def load_networks(dnet_path: PathLike | None = None, lnet_path: PathLike | None = None,
                  enet_path: PathLike | None = None, *, device: Device = "cpu",
                  weights_only: bool = True) -> Networks:
    """All three official networks (paths default to the checkpoint manifest)."""
    dnet = load_dnet(dnet_path, device=device, weights_only=weights_only)
    enet = load_enet(enet_path, lnet_path, device=device, weights_only=weights_only)
    return Networks(dnet, enet.low_res, enet)


def enet_head(enet: ENet) -> nn.Module:
    """A container holding the E-Net's own submodules (not ``low_res``), keys as in the E-Net."""
    head = nn.Module()
    for name, child in enet.named_children():
        if name != "low_res":
            head.add_module(name, child)
    return head


def seed_enet_head_(enet: ENet, seed: int = 0) -> ENet:
    """Fill the E-Net's own weights by ``seeded-v1`` (E-Net key names); ``low_res`` is left alone.

    With the inner L-Net filled as a stand-alone L-Net, this mirrors the official
    rule that ``low_res`` comes from the L-Net file; it is also how the ENet
    parity fixture was made.
    """
    head = enet_head(enet)
    load_strict(head, seeded_state_dict(head, seed), source=f"{SEEDED_PROTOCOL}(seed={seed})")
    return enet


def build_networks(weights: Literal["official", "seeded"] = "official", seed: int = 0,
                   device: Device = "cpu", root: PathLike | None = None) -> Networks:
    """D-Net, L-Net and E-Net in eval mode, from the official files or ``seeded-v1`` weights.

    Seeded weights give a deterministic, meaningless face: good for smoke runs and
    parity tests on machines without the checkpoints, never for results.
    """
    if weights == "official":
        paths = {name: checkpoint_path(name, root) for name in ("dnet", "lnet", "enet")}
        return load_networks(paths["dnet"], paths["lnet"], paths["enet"], device=device)
    if weights != "seeded":
        raise ConfigError(f"unknown weights {weights!r} for the VideoReTalking networks",
                          hint="use weights: official (the released checkpoints) or weights: seeded")
    log.warning("VideoReTalking networks use SEEDED weights (%s, seed=%d): outputs are NOT real results",
                SEEDED_PROTOCOL, seed)
    dnet = fill_seeded_(DNet(), seed)
    lnet = fill_seeded_(LNet(), seed)
    enet = seed_enet_head_(ENet(lnet=lnet), seed)
    return Networks(dnet.eval().to(device), enet.low_res.eval().to(device), enet.eval().to(device))
