"""D-Net: expression neutralisation of the reference frame (PIRenderer-style).

A 3DMM coefficient window (B, 73, 26) is mapped to a descriptor; the descriptor
drives (1) an ADAIN hourglass predicting a 64x64 flow that warps the input
image and (2) an editing U-Net that repairs the warped image. Attribute names
follow the official ``DNet.pt`` (``warpping_net`` is the official spelling).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.models.video_retalking.networks.blocks import ADAIN, ConvNormAct, FinalConv, LayerNorm2d, ResBlockStack, SkipDecoder

_SLOPE = 0.1  # LeakyReLU slope used throughout D-Net


class MappingNet(nn.Module):
    """Dilated 1-D conv stack over the coefficient window, averaged over time."""

    def __init__(self, coeff_nc: int = 73, descriptor_nc: int = 256, layer: int = 3) -> None:
        super().__init__()
        self.layer = layer
        self.first = nn.Sequential(nn.Conv1d(coeff_nc, descriptor_nc, kernel_size=7))
        for i in range(layer):
            block = nn.Sequential(nn.LeakyReLU(_SLOPE),
                                  nn.Conv1d(descriptor_nc, descriptor_nc, kernel_size=3, dilation=3))
            self.add_module(f"encoder{i}", block)

    def forward(self, coeffs: torch.Tensor) -> torch.Tensor:
        out = self.first(coeffs)
        for i in range(self.layer):
            # each dilated conv trims 3 steps per side: the residual is cropped to match
            out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]
        return out.mean(dim=2, keepdim=True)


class _AdainDown(nn.Module):
    """ADAIN -> act -> 4x4/2 conv, ADAIN -> act -> 3x3 conv."""

    def __init__(self, cin: int, cout: int, feature_nc: int) -> None:
        super().__init__()
        self.conv_0 = nn.Conv2d(cin, cout, 4, 2, 1)
        self.conv_1 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.norm_0 = ADAIN(cin, feature_nc)
        self.norm_1 = ADAIN(cout, feature_nc)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_0(F.leaky_relu(self.norm_0(x, z), _SLOPE))
        return self.conv_1(F.leaky_relu(self.norm_1(x, z), _SLOPE))


class _AdainUp(nn.Module):
    """Residual x2 upsampling with transposed convs, both branches ADAIN-conditioned."""

    def __init__(self, cin: int, cout: int, hidden: int, feature_nc: int) -> None:
        super().__init__()
        up = dict(kernel_size=3, stride=2, padding=1, output_padding=1)
        self.conv_0 = nn.Conv2d(cin, hidden, 3, 1, 1)
        self.conv_1 = nn.ConvTranspose2d(hidden, cout, **up)
        self.conv_s = nn.ConvTranspose2d(cin, cout, **up)
        self.norm_0 = ADAIN(cin, feature_nc)
        self.norm_1 = ADAIN(hidden, feature_nc)
        self.norm_s = ADAIN(cin, feature_nc)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(F.leaky_relu(self.norm_s(x, z), _SLOPE))
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, z), _SLOPE))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, z), _SLOPE))
        return shortcut + dx


class _HourglassEncoder(nn.Module):
    def __init__(self, image_nc: int, feature_nc: int, ngf: int, max_nc: int, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.input_layer = nn.Conv2d(image_nc, ngf, 7, 1, 3)
        for i in range(layers):
            cin, cout = min(ngf * 2 ** i, max_nc), min(ngf * 2 ** (i + 1), max_nc)
            self.add_module(f"encoder{i}", _AdainDown(cin, cout, feature_nc))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.input_layer(x)]
        for i in range(self.layers):
            feats.append(getattr(self, f"encoder{i}")(feats[-1], z))
        return feats


class _HourglassDecoder(nn.Module):
    """Decodes the deepest ``decoder_layers`` scales, concatenating the encoder skip after each."""

    def __init__(self, feature_nc: int, ngf: int, max_nc: int, encoder_layers: int, decoder_layers: int) -> None:
        super().__init__()
        self.levels = list(range(encoder_layers - decoder_layers, encoder_layers))[::-1]
        for i in self.levels:
            cin = min(ngf * 2 ** (i + 1), max_nc)
            if i != encoder_layers - 1:
                cin *= 2  # previous output concatenated with the skip
            cout = min(ngf * 2 ** i, max_nc)
            self.add_module(f"decoder{i}", _AdainUp(cin, cout, cout, feature_nc))
        self.output_nc = 2 * cout

    def forward(self, feats: list[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for i in self.levels:
            out = torch.cat([getattr(self, f"decoder{i}")(out, z), feats.pop()], dim=1)
        return out


class _Hourglass(nn.Module):
    def __init__(self, image_nc: int, feature_nc: int, ngf: int, max_nc: int,
                 encoder_layers: int, decoder_layers: int) -> None:
        super().__init__()
        self.encoder = _HourglassEncoder(image_nc, feature_nc, ngf, max_nc, encoder_layers)
        self.decoder = _HourglassDecoder(feature_nc, ngf, max_nc, encoder_layers, decoder_layers)
        self.output_nc = self.decoder.output_nc

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x, z), z)


def flow_to_grid(flow: torch.Tensor) -> torch.Tensor:
    """Pixel flow (B, 2, h, w) -> ``grid_sample`` grid (B, h, w, 2) in [-1, 1] (align_corners=True spacing)."""
    _, _, h, w = flow.shape
    xs = 2 * (torch.arange(w, dtype=flow.dtype, device=flow.device) / (w - 1)) - 1
    ys = 2 * (torch.arange(h, dtype=flow.dtype, device=flow.device) / (h - 1)) - 1
    base = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
    offset = 2 * torch.cat([flow[:, :1] / (w - 1), flow[:, 1:] / (h - 1)], dim=1)
    return base[None] + offset.permute(0, 2, 3, 1)


def warp_image(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear warp; a coarse grid is first resized (bilinear) to the image size."""
    h, w = image.shape[-2:]
    if grid.shape[1:3] != (h, w):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                             align_corners=False).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class WarpingNet(nn.Module):
    def __init__(self, image_nc: int = 3, descriptor_nc: int = 256, base_nc: int = 32, max_nc: int = 256,
                 encoder_layer: int = 5, decoder_layer: int = 3) -> None:
        super().__init__()
        self.hourglass = _Hourglass(image_nc, descriptor_nc, base_nc, max_nc, encoder_layer, decoder_layer)
        nc = self.hourglass.output_nc
        self.flow_out = nn.Sequential(LayerNorm2d(nc), nn.LeakyReLU(_SLOPE), nn.Conv2d(nc, 2, 7, 1, 3))

    def forward(self, image: torch.Tensor, descriptor: torch.Tensor) -> dict[str, torch.Tensor]:
        flow = self.flow_out(self.hourglass(image, descriptor))
        return {"flow_field": flow, "warp_image": warp_image(image, flow_to_grid(flow))}


class _FineResBlock(nn.Module):
    """``out = x + ADAIN(conv2(x))``.

    The official block also computes ``act(ADAIN(conv1(x)))`` and then discards
    it (its second line reads ``conv2(x)``, not ``conv2(dx)``). ``conv1``/``norm1``
    are kept for checkpoint compatibility but not evaluated: same output, less work.
    """

    def __init__(self, channels: int, feature_nc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm1 = ADAIN(channels, feature_nc)
        self.norm2 = ADAIN(channels, feature_nc)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.conv2(x), z) + x


class _FineResBlocks(ResBlockStack):
    def __init__(self, num_blocks: int, channels: int, feature_nc: int) -> None:
        super().__init__([_FineResBlock(channels, feature_nc) for _ in range(num_blocks)])


class _FineEncoder(nn.Module):
    def __init__(self, image_nc: int, ngf: int, max_nc: int, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.first = ConvNormAct(image_nc, ngf, 7, slope=_SLOPE, spectral=False)
        for i in range(layers):
            cin, cout = min(ngf * 2 ** i, max_nc), min(ngf * 2 ** (i + 1), max_nc)
            self.add_module(f"down{i}", ConvNormAct(cin, cout, 3, slope=_SLOPE, spectral=False, pool=True))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.first(x)]
        for i in range(self.layers):
            feats.append(getattr(self, f"down{i}")(feats[-1]))
        return feats


class _FineDecoder(SkipDecoder):
    def __init__(self, image_nc: int, feature_nc: int, ngf: int, max_nc: int, layers: int, num_blocks: int) -> None:
        super().__init__()
        self.layers = layers
        for i in reversed(range(layers)):
            cin, cout = min(ngf * 2 ** (i + 1), max_nc), min(ngf * 2 ** i, max_nc)
            self.add_module(f"up{i}", ConvNormAct(cin, cout, 3, slope=_SLOPE, spectral=False, upsample=True))
            self.add_module(f"res{i}", _FineResBlocks(num_blocks, cin, feature_nc))
            self.add_module(f"jump{i}", ConvNormAct(cout, cout, 3, slope=_SLOPE, spectral=False))
        self.final = FinalConv(cout, image_nc, spectral=False, activation="tanh")


class EditingNet(nn.Module):
    def __init__(self, image_nc: int = 3, descriptor_nc: int = 256, layer: int = 3, base_nc: int = 64,
                 max_nc: int = 256, num_res_blocks: int = 2) -> None:
        super().__init__()
        self.encoder = _FineEncoder(image_nc * 2, base_nc, max_nc, layer)
        self.decoder = _FineDecoder(image_nc, descriptor_nc, base_nc, max_nc, layer, num_res_blocks)

    def forward(self, image: torch.Tensor, warped: torch.Tensor, descriptor: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(torch.cat([image, warped], dim=1)), descriptor)


class DNet(nn.Module):
    """forward(input_image (B,3,256,256) in [-1,1], driving_source (B,73,26)) -> dict.

    Keys of the result: ``flow_field`` (B,2,64,64), ``warp_image`` and, unless
    ``stage == "warp"``, ``fake_image`` (B,3,256,256) in [-1, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.mapping_net = MappingNet()
        self.warpping_net = WarpingNet()  # official spelling: it is the checkpoint key prefix
        self.editing_net = EditingNet()

    def forward(self, input_image: torch.Tensor, driving_source: torch.Tensor,
                stage: str | None = None) -> dict[str, torch.Tensor]:
        descriptor = self.mapping_net(driving_source)
        output = self.warpping_net(input_image, descriptor)
        if stage != "warp":
            output["fake_image"] = self.editing_net(input_image, output["warp_image"], descriptor)
        return output
