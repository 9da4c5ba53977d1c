"""GFPGAN v1.3 ("clean" architecture): U-Net encoder + StyleGAN2 decoder with SFT conditions.

VideoReTalking restores the mouth region of every output frame with
``GFPGANer(GFPGANv1.3.pth, upscale=1, arch='clean', channel_multiplier=2)``.
Keys equal the reference ``GFPGANv1Clean`` (checkpoint entry ``params_ema``) so
the official file loads strictly. The StyleGAN2 "clean" layers are shared with
the E-Net (:mod:`talkingface.face.stylegan`).

Noise: the reference draws fresh noise on every call (``randomize_noise=True``),
so two runs differ slightly. Here the default uses the checkpoint's stored
noise maps (``noises.noise<i>``), which makes restoration reproducible; pass
``randomize_noise=True`` (optionally with a ``torch.Generator``) for the
reference's behaviour.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.errors import CheckpointError
from talkingface.face.stylegan import PixelNorm as NormStyleCode
from talkingface.face.stylegan import StyleConv, ToRGB
from talkingface.face.stylegan import channels as _channels

log = logging.getLogger(__name__)

PathLike = str | Path


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.repeat(batch, 1, 1, 1)


class StyleGAN2GeneratorCSFT(nn.Module):
    """Clean StyleGAN2 generator whose feature maps are modulated by SFT (scale, shift) conditions."""

    def __init__(self, out_size: int, num_style_feat: int = 512, num_mlp: int = 8, channel_multiplier: int = 2,
                 narrow: float = 1.0, sft_half: bool = True) -> None:
        super().__init__()
        self.num_style_feat, self.sft_half = num_style_feat, sft_half
        mlp: list[nn.Module] = [NormStyleCode()]
        for _ in range(num_mlp):
            mlp += [nn.Linear(num_style_feat, num_style_feat), nn.LeakyReLU(0.2)]
        self.style_mlp = nn.Sequential(*mlp)
        ch = self.channels = _channels(channel_multiplier, narrow)
        self.constant_input = ConstantInput(ch[4], 4)
        self.style_conv1 = StyleConv(ch[4], ch[4], 3, num_style_feat, demodulate=True)
        self.to_rgb1 = ToRGB(ch[4], num_style_feat, upsample=False)
        self.log_size = int(math.log(out_size, 2))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.num_latent = self.log_size * 2 - 2
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for idx in range(self.num_layers):
            res = 2 ** ((idx + 5) // 2)
            self.noises.register_buffer(f"noise{idx}", torch.randn(1, 1, res, res))
        cin = ch[4]
        for i in range(3, self.log_size + 1):
            cout = ch[2 ** i]
            self.style_convs.append(StyleConv(cin, cout, 3, num_style_feat, demodulate=True, sample_mode="upsample"))
            self.style_convs.append(StyleConv(cout, cout, 3, num_style_feat, demodulate=True))
            self.to_rgbs.append(ToRGB(cout, num_style_feat, upsample=True))
            cin = cout

    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: str | torch.device = "cpu") -> list[torch.Tensor]:
        """The noise maps ``randomize_noise=True`` would draw, drawn now: the same RNG calls in the same order
        (one standard-normal (B,1,res,res) map per style conv), so the same values; passed back as ``noise``
        they make the call a pure function of its inputs (exportable to ONNX)."""
        shapes = [getattr(self.noises, f"noise{i}").shape[-2:] for i in range(self.num_layers)]
        if generator is None:
            return [torch.randn(batch, 1, *hw, device=device) for hw in shapes]
        return [torch.randn(batch, 1, *hw, device=generator.device, generator=generator).to(device) for hw in shapes]

    def forward(self, latent: torch.Tensor, conditions: list[torch.Tensor], randomize_noise: bool = False,
                generator: torch.Generator | None = None,
                noise_maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``latent`` (B, num_latent, F) (``different_w``) or (B, F); returns RGB (B,3,S,S).

        ``noise_maps``: one map per style conv (:meth:`draw_noise`), used in place of any other noise."""
        if latent.ndim < 3:
            latent = latent.unsqueeze(1).repeat(1, self.num_latent, 1)
        if noise_maps:
            noise = list(noise_maps)
        elif randomize_noise:
            noise: list[torch.Tensor | None] = [None] * self.num_layers
        else:
            noise = [getattr(self.noises, f"noise{i}") for i in range(self.num_layers)]
        out = self.constant_input(latent.shape[0])
        out = self.style_conv1(out, latent[:, 0], noise[0], generator)
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv1, conv2, n1, n2, to_rgb in zip(self.style_convs[::2], self.style_convs[1::2], noise[1::2],
                                                 noise[2::2], self.to_rgbs):
            out = conv1(out, latent[:, i], n1, generator)
            if i < len(conditions):
                if self.sft_half:
                    same, sft = torch.split(out, out.size(1) // 2, dim=1)
                    out = torch.cat([same, sft * conditions[i - 1] + conditions[i]], dim=1)
                else:
                    out = out * conditions[i - 1] + conditions[i]
            out = conv2(out, latent[:, i + 1], n2, generator)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


class _ResBlock(nn.Module):
    """Bilinear down/up residual block of the GFPGAN U-Net (in-place-free version of the reference's)."""

    def __init__(self, cin: int, cout: int, mode: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.scale_factor = 0.5 if mode == "down" else 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x), 0.2)
        out = F.interpolate(out, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        out = F.leaky_relu(self.conv2(out), 0.2)
        x = F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        return out + self.skip(x)


class GFPGANv1Clean(nn.Module):
    """``(B,3,S,S)`` RGB in [-1,1] -> restored RGB (about [-1,1]).

    Defaults are GFPGANv1.3's: 512, 512-d styles, channel multiplier 2,
    ``input_is_latent``, ``different_w``, ``sft_half``. Smaller sizes build the
    same code for tests.
    """

    def __init__(self, out_size: int = 512, num_style_feat: int = 512, channel_multiplier: int = 2, num_mlp: int = 8,
                 input_is_latent: bool = True, different_w: bool = True, narrow: float = 1.0,
                 sft_half: bool = True) -> None:
        super().__init__()
        self.size = out_size
        self.input_is_latent, self.different_w, self.num_style_feat = input_is_latent, different_w, num_style_feat
        ch = _channels(channel_multiplier, narrow * 0.5)
        self.log_size = int(math.log(out_size, 2))
        first = 2 ** self.log_size
        self.conv_body_first = nn.Conv2d(3, ch[first], 1)
        cin = ch[first]
        self.conv_body_down = nn.ModuleList()
        for i in range(self.log_size, 2, -1):
            self.conv_body_down.append(_ResBlock(cin, ch[2 ** (i - 1)], "down"))
            cin = ch[2 ** (i - 1)]
        self.final_conv = nn.Conv2d(cin, ch[4], 3, 1, 1)
        cin = ch[4]
        self.conv_body_up = nn.ModuleList()
        for i in range(3, self.log_size + 1):
            self.conv_body_up.append(_ResBlock(cin, ch[2 ** i], "up"))
            cin = ch[2 ** i]
        self.toRGB = nn.ModuleList([nn.Conv2d(ch[2 ** i], 3, 1) for i in range(3, self.log_size + 1)])
        linear_out = (self.log_size * 2 - 2) * num_style_feat if different_w else num_style_feat
        self.final_linear = nn.Linear(ch[4] * 16, linear_out)
        self.stylegan_decoder = StyleGAN2GeneratorCSFT(out_size, num_style_feat, num_mlp, channel_multiplier, narrow,
                                                       sft_half)
        self.condition_scale = nn.ModuleList()
        self.condition_shift = nn.ModuleList()
        for i in range(3, self.log_size + 1):
            c = ch[2 ** i]
            sft_c = c if sft_half else c * 2
            for branch in (self.condition_scale, self.condition_shift):
                branch.append(nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.LeakyReLU(0.2),
                                            nn.Conv2d(c, sft_c, 3, 1, 1)))

    def forward(self, x: torch.Tensor, *noise_maps: torch.Tensor, randomize_noise: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """``noise_maps``: the decoder's noise as inputs (``stylegan_decoder.draw_noise``), so that the
        call with its noise is a pure function of tensors (the ONNX backends run it); none: ``randomize_noise``
        / ``generator`` as in GFPGAN."""
        conditions: list[torch.Tensor] = []
        skips: list[torch.Tensor] = []
        feat = F.leaky_relu(self.conv_body_first(x), 0.2)
        for down in self.conv_body_down:
            feat = down(feat)
            skips.insert(0, feat)
        feat = F.leaky_relu(self.final_conv(feat), 0.2)
        style = self.final_linear(feat.reshape(feat.size(0), -1))
        if self.different_w:
            style = style.view(style.size(0), -1, self.num_style_feat)
        for i, up in enumerate(self.conv_body_up):
            feat = up(feat + skips[i])
            conditions.append(self.condition_scale[i](feat))
            conditions.append(self.condition_shift[i](feat))
        if not self.input_is_latent:
            style = self.stylegan_decoder.style_mlp(style)
        return self.stylegan_decoder(style, conditions, randomize_noise=randomize_noise, generator=generator,
                                     noise_maps=list(noise_maps))


def _read_gfpgan(path: Path) -> Mapping[str, torch.Tensor]:
    from talkingface.weights.seeded import torch_load

    state = torch_load(path)
    if isinstance(state, Mapping):
        for key in ("params_ema", "params"):
            if key in state and isinstance(state[key], Mapping):
                return state[key]
    keys = list(state)[:5] if isinstance(state, Mapping) else type(state).__name__
    raise CheckpointError(f"{path}: no 'params_ema' / 'params' entry (found {keys})",
                          hint="expected GFPGANv1.3.pth; run `python -m talkingface checkpoints verify`")


def load_gfpgan(path: PathLike | None = None, *, weights: str = "official", seed: int = 0,
                device: str | torch.device = "cpu", root: PathLike | None = None, size: int = 512,
                narrow: float = 1.0, num_style_feat: int = 512) -> GFPGANv1Clean:
    """``GFPGANv1.3.pth['params_ema']`` (or ``['params']``, as GFPGANer) strictly, or seeded-v1 weights."""
    from talkingface.face import load_net

    net = GFPGANv1Clean(size, num_style_feat, 2, narrow=narrow)
    return load_net(net, name="gfpgan", path=path, weights=weights, seed=seed, device=device, root=root,
                    read=_read_gfpgan)
