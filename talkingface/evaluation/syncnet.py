"""SyncNet (Chung & Zisserman 2016, ``syncnet_v2.model``) and its MFCC front end.

LSE-C / LSE-D are only comparable with published numbers when the network,
its weights and its inputs are exactly those of syncnet_python. So the module
below keeps the state-dict layout of the reference ``SyncNetModel.S``
(``netcnnaud`` / ``netfcaud`` / ``netcnnlip`` / ``netfclip`` as numbered
``nn.Sequential`` stacks) and the official file loads with ``strict=True``.

Inputs, as the reference feeds them:

* lip: ``(N, 3, 5, 224, 224)`` float, **BGR**, raw 0-255 (no normalisation);
* audio: ``(N, 1, 13, 20)`` MFCC windows: python_speech_features defaults
  (13 coefficients, 25 ms window, 10 ms step, 26 filters, preemphasis 0.97,
  log energy as c0) computed on **int16-scaled** samples at 16 kHz — the
  scale matters because c0 is a log energy.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from talkingface.errors import CheckpointError
from talkingface.weights.seeded import load_metric_net, torch_load

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MFCC_PER_FRAME = 4  # 100 MFCC frames/s over 25 video frames/s
WINDOW_FRAMES = 5  # video frames per SyncNet window
WINDOW_MFCC = WINDOW_FRAMES * MFCC_PER_FRAME  # 20 MFCC steps
SAMPLES_PER_FRAME = SAMPLE_RATE // 25  # 640
EMBED_DIM = 1024

# (kind, in, out, kernel, stride, padding) for convs; ("pool", kernel, stride, padding) for max pools.
# "bn" follows every conv, then ReLU; the numbering of nn.Sequential gives the checkpoint keys.
_AUDIO_STACK: Sequence[tuple] = (
    ("conv", 1, 64, (3, 3), (1, 1), (1, 1)), ("pool", (1, 1), (1, 1), 0),
    ("conv", 64, 192, (3, 3), (1, 1), (1, 1)), ("pool", (3, 3), (1, 2), 0),
    ("conv", 192, 384, (3, 3), (1, 1), (1, 1)),
    ("conv", 384, 256, (3, 3), (1, 1), (1, 1)),
    ("conv", 256, 256, (3, 3), (1, 1), (1, 1)), ("pool", (3, 3), (2, 2), 0),
    ("conv", 256, 512, (5, 4), (1, 1), (0, 0)),
)
_LIP_STACK: Sequence[tuple] = (
    ("conv", 3, 96, (5, 7, 7), (1, 2, 2), (0, 0, 0)), ("pool", (1, 3, 3), (1, 2, 2), 0),
    ("conv", 96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), ("pool", (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ("conv", 256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("conv", 256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("conv", 256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)), ("pool", (1, 3, 3), (1, 2, 2), 0),
    ("conv", 256, 512, (1, 6, 6), (1, 1, 1), (0, 0, 0)),
)


def _stack(spec: Sequence[tuple], dims: int) -> nn.Sequential:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    pool = nn.MaxPool2d if dims == 2 else nn.MaxPool3d
    layers: list[nn.Module] = []
    for entry in spec:
        if entry[0] == "conv":
            _, cin, cout, kernel, stride, padding = entry
            layers += [conv(cin, cout, kernel_size=kernel, stride=stride, padding=padding), norm(cout), nn.ReLU()]
        else:
            _, kernel, stride, padding = entry
            layers.append(pool(kernel_size=kernel, stride=stride, padding=padding))
    return nn.Sequential(*layers)


def _head(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, dim))


class SyncNet(nn.Module):
    """Audio and lip towers mapping a 0.2 s window to a 1024-d embedding each."""

    def __init__(self, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.netcnnaud = _stack(_AUDIO_STACK, 2)
        self.netfcaud = _head(embed_dim)
        self.netfclip = _head(embed_dim)
        self.netcnnlip = _stack(_LIP_STACK, 3)

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 13, 20)`` MFCC windows -> ``(N, 1024)``."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        """``(N, 3, 5, 224, 224)`` BGR 0-255 windows -> ``(N, 1024)``."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))

    def forward(self, mfcc: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_aud(mfcc), self.forward_lip(frames)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a SyncNet file (a state dict, possibly wrapped or DataParallel-prefixed)."""
    path = Path(path)
    try:
        loaded: Any = torch_load(path, weights_only=True)
    except CheckpointError as safe_error:
        # Files from 2017 pickle old storage classes; retry the full unpickler only for this
        # file, which comes from the manifest (never for arbitrary paths we were not given).
        log.warning("%s: restricted loading failed (%s); retrying with weights_only=False",
                    path.name, safe_error.message)
        loaded = torch_load(path, weights_only=False)
    if isinstance(loaded, nn.Module):
        loaded = loaded.state_dict()
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a SyncNet state dict",
                              hint="download syncnet_v2.model again: `python -m talkingface checkpoints download syncnet`")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in loaded.items()}


def load_syncnet(path: str | Path | None = None, *, weights: str = "official", seed: int = 0,
                 root: str | Path | None = None, device: str | torch.device = "cpu") -> SyncNet:
    """SyncNet in eval mode with official weights (``path`` or the manifest's file) or ``seeded-v1``.

    The returned module carries ``weights_info`` (file + sha256, or the seeded protocol)
    for the results files.
    """
    return load_metric_net(SyncNet(), name="syncnet", path=path, weights=weights, seed=seed, root=root,
                           device=device, read=read_state_dict)


def to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> the int16 sample values a 16-bit wav holds (what the reference reads).

    Rounded and clipped like ffmpeg's float -> s16 conversion.
    """
    audio = np.asarray(audio)
    if audio.dtype == np.int16:
        return audio
    return np.clip(np.rint(audio.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def syncnet_mfcc(audio_int16: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``(13, n_steps)`` MFCC, python_speech_features defaults, 100 steps per second."""
    import python_speech_features

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"SyncNet audio must be {SAMPLE_RATE} Hz, got {sample_rate}")
    return np.ascontiguousarray(python_speech_features.mfcc(np.asarray(audio_int16), sample_rate).T)
