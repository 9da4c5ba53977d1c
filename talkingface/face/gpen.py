"""GPEN face restoration generator (``GPEN-BFR-512.pth``): encoder + StyleGAN2 decoder.

VideoReTalking runs GPEN on every D-Net reference frame and on the final
frames ("FaceEnhancement"). The encoder's feature maps are the decoder's
"noise" (concatenated, GPEN's ``isconcat``), so the network is deterministic:
no random noise is drawn anywhere.

Written in plain PyTorch: the FIR up/down-sampling of StyleGAN2 (``upfirdn2d``)
and the fused bias + leaky ReLU are re-expressed with standard ops (the
reference's own CPU path computes the same). Key names equal the reference
``FullGenerator`` so the official file loads strictly; the FIR kernels are
buffers stored in the file (``*.kernel``), kept as such.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.face.stylegan import PixelNorm
from talkingface.face.stylegan import channels as _channels

log = logging.getLogger(__name__)

PathLike = str | Path
BLUR_KERNEL = (1, 3, 3, 1)


# --------------------------------------------------------------------------- StyleGAN2 ops

def make_kernel(k: tuple[int, ...] | list[int]) -> torch.Tensor:
    kernel = torch.tensor(k, dtype=torch.float32)
    if kernel.ndim == 1:
        kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-insertion upsampling, padding, FIR filtering (true convolution), decimation; per channel."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    if torch.onnx.is_in_onnx_export():  # a constant kernel in the graph, not one shaped from the input's size
        weight = torch.from_numpy(weight.detach().cpu().numpy().copy())
    out = F.conv2d(x, weight, groups=c)
    return out[:, :, ::down, ::down]


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, slope: float = 0.2, scale: float = 2 ** 0.5) -> torch.Tensor:
    return scale * F.leaky_relu(x + bias.view((1, -1) + (1,) * (x.ndim - 2)), slope)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class Upsample(nn.Module):
    def __init__(self, kernel: tuple[int, ...] = BLUR_KERNEL, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        k = make_kernel(kernel) * factor ** 2
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    def __init__(self, kernel: tuple[int, ...], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor ** 2
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv with the He constant applied at run time (equalised learning rate)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.scale = 1 / math.sqrt(cin * kernel ** 2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    def __init__(self, din: int, dout: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dout, din) / lr_mul)
        self.bias = nn.Parameter(torch.full((dout,), float(bias_init)))
        self.activation = activation
        self.scale = lr_mul / math.sqrt(din)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated conv; upsampling by transposed conv + blur (the original, non-"clean" form)."""

    def __init__(self, cin: int, cout: int, kernel: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: tuple[int, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        self.cin, self.cout, self.kernel_size = cin, cout, kernel
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1 / math.sqrt(cin * kernel ** 2)
        self.padding = kernel // 2
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel, kernel))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1)

    #: False: StyleGAN2's non-fused formulation (scale the input channels by the style, convolve with the
    #: fixed weight, scale the output channels by the demodulation coefficients). Mathematically the fused
    #: per-sample kernel; its conv weight is a constant, so the network exports to ONNX (static kernels)
    fused: bool = True

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self._forward_unfused(x, style)
        b, c, h, w = x.shape
        k = self.kernel_size
        weight = self.scale * self.weight * self.modulation(style).view(b, 1, c, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.cout, 1, 1, 1)
        x = x.reshape(1, b * c, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.cout, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            return self.blur(out.view(b, self.cout, *out.shape[2:]))
        out = F.conv2d(x, weight.reshape(b * self.cout, c, k, k), padding=self.padding, groups=b)
        return out.view(b, self.cout, *out.shape[2:])

    def _forward_unfused(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        style = self.modulation(style).view(b, c, 1, 1)
        weight = self.scale * self.weight[0]  # (out, in, k, k), the same for every sample
        x = x * style
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # the fused kernel's demodulation: rsqrt(sum over in, k, k of (scale * w * s)^2 + eps), per sample
            power = weight.pow(2).sum([2, 3]) @ style.view(b, c).pow(2).t()  # (out, b)
            out = out * torch.rsqrt(power.t() + 1e-8).view(b, self.cout, 1, 1)
        return self.blur(out) if self.upsample else out


class NoiseInjection(nn.Module):
    """GPEN's concatenating noise: ``cat(x, weight * noise)`` (noise = an encoder feature map)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.weight * noise), dim=1)


class StyledConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, kernel, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(cout * 2)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    def __init__(self, cin: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class ConvLayer(nn.Sequential):
    """[Blur] + EqualConv2d + FusedLeakyReLU (GPEN encoder layer; Sequential indices are the keys)."""

    def __init__(self, cin: int, cout: int, kernel: int, downsample: bool = False) -> None:
        layers: list[nn.Module] = []
        if downsample:
            p = (len(BLUR_KERNEL) - 2) + (kernel - 1)
            layers.append(Blur(BLUR_KERNEL, pad=((p + 1) // 2, p // 2)))
            layers.append(EqualConv2d(cin, cout, kernel, padding=0, stride=2, bias=False))
        else:
            layers.append(EqualConv2d(cin, cout, kernel, padding=kernel // 2, stride=1, bias=False))
        layers.append(FusedLeakyReLU(cout))
        super().__init__(*layers)


class Generator(nn.Module):
    def __init__(self, size: int, style_dim: int, n_mlp: int, channel_multiplier: int = 2,
                 lr_mlp: float = 0.01, narrow: float = 1.0) -> None:
        super().__init__()
        self.size, self.style_dim = size, style_dim
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                                                  for _ in range(n_mlp)])
        ch = self.channels = _channels(channel_multiplier, narrow)
        self.input = nn.Module()
        self.input.input = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim)
        self.to_rgb1 = ToRGB(ch[4] * 2, style_dim, upsample=False)
        self.log_size = int(math.log(size, 2))
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        cin = ch[4]
        for i in range(3, self.log_size + 1):
            cout = ch[2 ** i]
            self.convs.append(StyledConv(cin * 2, cout, 3, style_dim, upsample=True))
            self.convs.append(StyledConv(cout * 2, cout, 3, style_dim))
            self.to_rgbs.append(ToRGB(cout * 2, style_dim))
            cin = cout
        self.n_latent = self.log_size * 2 - 2

    def forward(self, code: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        latent = self.style(code).unsqueeze(1).repeat(1, self.n_latent, 1)
        out = self.input.input.repeat(code.shape[0], 1, 1, 1)
        out = self.conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv1, conv2, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                 self.to_rgbs):
            out = conv1(out, latent[:, i], n1)
            out = conv2(out, latent[:, i + 1], n2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


class FullGenerator(nn.Module):
    """GPEN: ``(B,3,S,S)`` RGB in [-1,1] -> restored RGB in about [-1,1] (same size).

    ``FullGenerator(512, 512, 8, channel_multiplier=2, narrow=1)`` is ``GPEN-BFR-512``;
    smaller sizes / ``narrow`` build the same code for tests.
    """

    def __init__(self, size: int = 512, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 lr_mlp: float = 0.01, narrow: float = 1.0) -> None:
        super().__init__()
        ch = _channels(channel_multiplier, narrow)
        self.size = size
        self.log_size = int(math.log(size, 2))
        self.generator = Generator(size, style_dim, n_mlp, channel_multiplier, lr_mlp, narrow)
        self.ecd0 = nn.Sequential(ConvLayer(3, ch[size], 1))
        cin = ch[size]
        self.names = [f"ecd{i}" for i in range(self.log_size - 1)]
        for i in range(self.log_size, 2, -1):
            cout = ch[2 ** (i - 1)]
            setattr(self, self.names[self.log_size - i + 1], nn.Sequential(ConvLayer(cin, cout, 3, downsample=True)))
            cin = cout
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 16, style_dim, activation=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for name in self.names:
            x = getattr(self, name)(x)
            feats.append(x)
        code = self.final_linear(x.reshape(x.shape[0], -1))
        noise = [f for f in feats for _ in range(2)][::-1]
        return self.generator(code, noise[1:])


def load_gpen(path: PathLike | None = None, *, weights: str = "official", seed: int = 0,
              device: str | torch.device = "cpu", root: PathLike | None = None, size: int = 512,
              narrow: float = 1.0) -> FullGenerator:
    """``GPEN-BFR-512.pth`` (plain state dict, strict) or seeded-v1 weights.

    seeded-v1 fills every state entry, the FIR ``*.kernel`` buffers included (as
    it does for the parity reference); official files carry the true kernels.
    """
    from talkingface.face import load_net

    return load_net(FullGenerator(size, 512, 8, 2, narrow=narrow), name="gpen", path=path, weights=weights,
                    seed=seed, device=device, root=root)


@torch.inference_mode()
def restore_face(net: FullGenerator, face_rgb: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """GPEN ``FaceGAN.process`` on an RGB uint8 face: resize to the net size, restore, uint8 RGB (net size)."""
    import cv2

    size = net.size
    img = cv2.resize(np.ascontiguousarray(face_rgb), (size, size))
    x = (torch.from_numpy(img).to(device).float() / 255.0 - 0.5) / 0.5
    out = net(x.permute(2, 0, 1)[None])
    out = (out * 0.5 + 0.5)[0].permute(1, 2, 0).float().cpu().numpy()
    return (np.clip(out, 0, 1) * 255.0).astype(np.uint8)
