"""StyleGAN2-style layers of the E-Net, in plain PyTorch.

These are the "clean" variants (bilinear resampling via ``F.interpolate``, bias
and leaky ReLU applied separately), so no upfirdn2d / fused-bias-act kernels
are needed. Noise injection takes an explicit tensor or a ``torch.Generator``
so a run can be made deterministic.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def channels(channel_multiplier: int, narrow: float = 1.0) -> dict[int, int]:
    """Feature channels per resolution of a StyleGAN2 generator (GPEN's and GFPGAN's tables are this one)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {k: int(v * narrow) for k, v in base.items()}


class PixelNorm(nn.Module):
    """StyleGAN2's normalisation of the style code (GFPGAN calls it NormStyleCode); no parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class DownResBlock(nn.Module):
    """Residual block that halves (or doubles) resolution with bilinear resampling."""

    def __init__(self, cin: int, cout: int, mode: str = "down") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.scale_factor = {"down": 0.5, "up": 2.0}[mode]

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x), 0.2)
        out = F.leaky_relu(self.conv2(self._resample(out)), 0.2)
        return out + self.skip(self._resample(x))


class ModulatedConv2d(nn.Module):
    """Conv whose weights are scaled per sample by a style vector (optionally demodulated)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, num_style_feat: int, demodulate: bool = True,
                 sample_mode: str | None = None, eps: float = 1e-8) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = cin, cout, kernel_size
        self.demodulate, self.sample_mode, self.eps = demodulate, sample_mode, eps
        self.modulation = nn.Linear(num_style_feat, cin)
        # StyleGAN2 init (matters only when training from scratch; checkpoints overwrite it)
        nn.init.kaiming_normal_(self.modulation.weight, a=0, mode="fan_in", nonlinearity="linear")
        nn.init.constant_(self.modulation.bias, 1.0)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel_size, kernel_size)
                                   / math.sqrt(cin * kernel_size ** 2))
        self.padding = kernel_size // 2

    #: False: StyleGAN2's non-fused formulation (input channels scaled by the style, one conv with the fixed
    #: weight for the whole batch, output channels scaled by the demodulation coefficients): the fused
    #: per-sample kernels' arithmetic up to fp32 rounding, without a grouped conv over the batch
    fused: bool = True

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self._forward_unfused(x, style)
        b, c = x.shape[:2]
        scale = self.modulation(style).reshape(b, 1, c, 1, 1)
        weight = self.weight * scale  # (b, out, in, k, k)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum(dim=[2, 3, 4]) + self.eps)
            weight = weight * demod.reshape(b, self.out_channels, 1, 1, 1)
        if self.sample_mode == "upsample":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        elif self.sample_mode == "downsample":
            x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        h, w = x.shape[-2:]
        # one grouped conv applies each sample's own weights
        weight = weight.reshape(b * self.out_channels, c, self.kernel_size, self.kernel_size)
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=self.padding, groups=b)
        return out.reshape(b, self.out_channels, *out.shape[-2:])

    def _forward_unfused(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        scale = self.modulation(style).reshape(b, c, 1, 1)
        if self.sample_mode == "upsample":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        elif self.sample_mode == "downsample":
            x = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        out = F.conv2d(x * scale, self.weight[0], padding=self.padding)
        if self.demodulate:
            # rsqrt(sum over in, k, k of (w * s)^2 + eps) per sample and output channel, as the fused kernel's
            power = self.weight[0].pow(2).sum([2, 3]) @ scale.reshape(b, c).pow(2).t()  # (out, b)
            out = out * torch.rsqrt(power.t() + self.eps).reshape(b, self.out_channels, 1, 1)
        return out


def draw_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard-normal (B, 1, H, W) noise for ``like``; from ``generator`` when given (on its device)."""
    b, _, h, w = like.shape
    if generator is None:
        return torch.randn(b, 1, h, w, dtype=like.dtype, device=like.device)
    noise = torch.randn(b, 1, h, w, dtype=like.dtype, device=generator.device, generator=generator)
    return noise.to(like.device)


class StyleConv(nn.Module):
    """Modulated conv, x sqrt(2), + weight * noise, + bias, leaky ReLU 0.2."""

    def __init__(self, cin: int, cout: int, kernel_size: int, num_style_feat: int, demodulate: bool = True,
                 sample_mode: str | None = None) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(cin, cout, kernel_size, num_style_feat, demodulate, sample_mode)
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) * 2 ** 0.5
        if noise is None:
            noise = draw_noise(out, generator)
        out = out + self.weight * noise
        return F.leaky_relu(out + self.bias, 0.2)


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB, plus the bilinearly upsampled previous RGB."""

    def __init__(self, cin: int, num_style_feat: int, upsample: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = ModulatedConv2d(cin, 3, 1, num_style_feat, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2.0, mode="bilinear", align_corners=False)
            out = out + skip
        return out
