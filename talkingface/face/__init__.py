"""The face stack shared by the VideoReTalking pipeline and the evaluator.

Detection (S3FD, RetinaFace, dlib), 68-point landmarks (FAN, dlib), the
FFHQ-style clip crop and Laplacian blending live here, one job per module.
Submodules are imported on demand (``from talkingface.face import s3fd``); this
file only holds the weight-loading rule the detector/landmark nets share.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from talkingface.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

PathLike = str | Path


def load_net(net: nn.Module, *, name: str, path: PathLike | None = None, weights: str = "official",
             seed: int = 0, device: str | torch.device = "cpu", root: PathLike | None = None,
             read: Callable[[Path], Mapping[str, torch.Tensor]] | None = None) -> nn.Module:
    """Fill ``net`` from an official file (strict keys/shapes) or ``seeded-v1``; eval mode on ``device``.

    ``name`` is the checkpoint-manifest entry used when ``path`` is None (so a
    missing file gives the manager's message with the download command);
    ``read`` turns the file into a state dict when it is not a plain one.
    """
    from talkingface.weights.seeded import SEEDED_PROTOCOL, fill_seeded_, load_strict, strip_prefix, torch_load

    if weights == "seeded":
        log.warning("%s uses SEEDED weights (%s, seed=%d): detections/landmarks are meaningless",
                    type(net).__name__, SEEDED_PROTOCOL, seed)
        fill_seeded_(net, seed)
        return net.eval().to(device)
    if weights != "official":
        raise ConfigError(f"unknown weights {weights!r} for {type(net).__name__}",
                          hint="use weights: official (the released file) or weights: seeded")
    if path is None:
        from talkingface.weights.manifest import checkpoint_path

        path = checkpoint_path(name, root)
    path = Path(path)
    state: Any = read(path) if read is not None else torch_load(path)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict",
                              hint="the file is not the official checkpoint for this network; run "
                                   "`python -m talkingface checkpoints verify`")
    load_strict(net, strip_prefix(dict(state), "module."), source=path)
    log.info("loaded %s from %s", type(net).__name__, path)
    return net.eval().to(device)
