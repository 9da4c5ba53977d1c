"""Fast Fourier convolution (FFC) residual blocks with ADAIN audio conditioning (L-Net decoder).

An FFC splits channels into a local part (ordinary 3x3 convs) and a global part
(a 1x1 conv in the 2-D Fourier domain, i.e. an image-wide receptive field).
Here 75 % of the channels are global, the spectral transform has no local
Fourier unit, and convs pad by reflection - the configuration of the official
L-Net. Key names (``convl2l``, ``convg2g.fu.conv_layer`` ...) follow its checkpoint.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.models.video_retalking.networks.blocks import ADAIN, ResBlockStack

GLOBAL_RATIO = 0.75
_LAMA_SLOPE = 0.01  # the official FFC blocks end up with nn.LeakyReLU()'s default slope


class FourierUnit(nn.Module):
    """rFFT -> 1x1 conv + BN + ReLU on stacked (real, imag) channels -> inverse rFFT."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(channels * 2, channels * 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(channels * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # FFTs run in float32 even under autocast: cuFFT half needs power-of-two sizes (these are
        # 12/24/48) and there is no bfloat16 FFT; a no-op for float32 inputs
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        h, w = x.shape[-2:]
        spec = torch.fft.rfftn(x.to(dtype), dim=(-2, -1), norm="ortho")
        # channel 2c is Re(c), 2c+1 is Im(c): the interleaving the trained 1x1 conv expects
        stacked = torch.stack((spec.real, spec.imag), dim=2).flatten(1, 2)
        stacked = F.relu(self.bn(self.conv_layer(stacked)))
        pairs = stacked.to(dtype).unflatten(1, (-1, 2))
        spec = torch.complex(pairs[:, :, 0].contiguous(), pairs[:, :, 1].contiguous())
        return torch.fft.irfftn(spec, s=(h, w), dim=(-2, -1), norm="ortho")


class SpectralTransform(nn.Module):
    """1x1 reduce -> Fourier unit (residual) -> 1x1 expand."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        half = cout // 2
        self.conv1 = nn.Sequential(nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        self.fu = FourierUnit(half)
        self.conv2 = nn.Conv2d(half, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Same-size FFC (3x3, stride 1, reflect padding, no bias) on a (local, global) pair."""

    def __init__(self, channels: int, ratio: float = GLOBAL_RATIO) -> None:
        super().__init__()
        g = int(channels * ratio)
        l = channels - g
        self.global_in_num = g

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 3, 1, 1, bias=False, padding_mode="reflect")

        self.convl2l = conv(l, l)
        self.convl2g = conv(l, g)
        self.convg2l = conv(g, l)
        self.convg2g = SpectralTransform(g, g)

    def forward(self, x_l: torch.Tensor, x_g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_l = self.convl2l(x_l) + self.convg2l(x_g)
        out_g = self.convl2g(x_l) + self.convg2g(x_g)
        return out_l, out_g


class FFCAdain(nn.Module):
    """FFC followed by ADAIN + LeakyReLU on each branch."""

    def __init__(self, channels: int, feature_nc: int) -> None:
        super().__init__()
        self.ffc = FFC(channels)
        g = self.ffc.global_in_num
        self.bn_l = ADAIN(channels - g, feature_nc)
        self.bn_g = ADAIN(g, feature_nc)

    def forward(self, x_l: torch.Tensor, x_g: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_l, x_g = self.ffc(x_l, x_g)
        return (F.leaky_relu(self.bn_l(x_l, z), _LAMA_SLOPE),
                F.leaky_relu(self.bn_g(x_g, z), _LAMA_SLOPE))


class FFCResBlock(nn.Module):
    """Two FFC-ADAIN layers with a residual; channels split as [local | global] (global last)."""

    def __init__(self, channels: int, feature_nc: int) -> None:
        super().__init__()
        self.conv1 = FFCAdain(channels, feature_nc)
        self.conv2 = FFCAdain(channels, feature_nc)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        g = self.conv1.ffc.global_in_num
        id_l, id_g = x[:, :-g], x[:, -g:]
        x_l, x_g = self.conv1(id_l, id_g, z)
        x_l, x_g = self.conv2(x_l, x_g, z)
        return torch.cat([id_l + x_l, id_g + x_g], dim=1)


class FFCResBlocks(ResBlockStack):
    """``num_blocks`` FFC residual blocks named ``res0 .. res{n-1}``."""

    def __init__(self, num_blocks: int, channels: int, feature_nc: int) -> None:
        super().__init__([FFCResBlock(channels, feature_nc) for _ in range(num_blocks)])
