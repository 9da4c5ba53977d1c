"""Small building blocks shared by D-Net and L-Net.

Module attribute names (``model``, ``mlp_shared``, ``conv_block`` ...) and
``nn.Sequential`` indices are dictated by the official checkpoints: they become
state-dict keys, so they must not change even where a nicer name exists.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm as _torch_spectral_norm


def maybe_spectral(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in PyTorch's (old-style) spectral norm when ``enabled``.

    The old API keeps ``weight_orig`` / ``weight_u`` / ``weight_v`` as state
    entries, which is the layout of the official L-Net checkpoint. In eval mode
    no power iteration runs, so the stored ``u``/``v`` define the weight exactly.
    """
    return _torch_spectral_norm(module) if enabled else module


class LayerNorm2d(nn.Module):
    """Layer norm over (C, H, W) with per-channel affine parameters of shape (C, 1, 1)."""

    def __init__(self, channels: int, affine: bool = True) -> None:
        super().__init__()
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(channels, 1, 1))
            self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[1:]
        if not self.affine:
            return F.layer_norm(x, shape)
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape))


class ADAIN(nn.Module):
    """Instance norm whose scale/shift come from a conditioning vector (audio or 3DMM code).

    ``out = IN(x) * (1 + gamma(z)) + beta(z)``; ``z`` may be (B, F) or (B, F, 1[, 1]).
    """

    hidden = 128

    def __init__(self, channels: int, feature_nc: int) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Linear(feature_nc, self.hidden), nn.ReLU())
        self.mlp_gamma = nn.Linear(self.hidden, channels)
        self.mlp_beta = nn.Linear(self.hidden, channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        hidden = self.mlp_shared(z.reshape(z.shape[0], -1))
        gamma = self.mlp_gamma(hidden)[:, :, None, None]
        beta = self.mlp_beta(hidden)[:, :, None, None]
        return normalized * (1 + gamma) + beta


class ConvNormAct(nn.Module):
    """``[nearest x2 ->] conv -> LayerNorm2d -> LeakyReLU [-> avg-pool /2]`` in ``self.model``.

    One class for the reference's First/Down/Up/Jump blocks: they differ only in
    kernel size and resampling, and share the key layout ``model.0`` (conv),
    ``model.1`` (norm).
    """

    def __init__(self, cin: int, cout: int, kernel_size: int, *, slope: float, spectral: bool,
                 pool: bool = False, upsample: bool = False) -> None:
        super().__init__()
        conv = nn.Conv2d(cin, cout, kernel_size, stride=1, padding=kernel_size // 2)
        layers: list[nn.Module] = [maybe_spectral(conv, spectral), LayerNorm2d(cout), nn.LeakyReLU(slope)]
        if pool:
            layers.append(nn.AvgPool2d(2))
        self.model = nn.Sequential(*layers)
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.model(x)


class FinalConv(nn.Module):
    """7x7 conv to an image followed by tanh (D-Net) or sigmoid (L-Net); keys ``model.0``."""

    def __init__(self, cin: int, cout: int, *, spectral: bool, activation: str) -> None:
        super().__init__()
        act = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}[activation]
        self.model = nn.Sequential(maybe_spectral(nn.Conv2d(cin, cout, 7, 1, 3), spectral), act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SkipDecoder(nn.Module):
    """Decoder of an encoder's feature pyramid (D-Net's editing net, L-Net): from the deepest level up,
    ``up{i}(res{i}(out, z)) + jump{i}(skip)``, then ``final``.

    The one forward pass both networks share; a subclass builds ``layers`` and the
    ``up{i}``/``res{i}``/``jump{i}``/``final`` modules (their names are the checkpoint keys).
    """

    layers: int

    def forward(self, feats: list[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for i in reversed(range(self.layers)):
            out = getattr(self, f"up{i}")(getattr(self, f"res{i}")(out, z))
            out = getattr(self, f"jump{i}")(feats.pop()) + out
        return self.final(out)


class ResBlockStack(nn.Module):
    """Residual blocks ``res0 .. res{n-1}`` applied in order, each conditioned on ``z`` (D-Net's ADAIN
    blocks, L-Net's FFC blocks): one container, so the key names and the loop are written once."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.num_blocks = len(blocks)
        for i, block in enumerate(blocks):
            self.add_module(f"res{i}", block)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_blocks):
            x = getattr(self, f"res{i}")(x, z)
        return x
