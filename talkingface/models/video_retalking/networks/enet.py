"""E-Net: lifts the 96x96 L-Net result to 384x384 with StyleGAN2-style layers.

A style code is encoded from the reference face (resized to 256); the L-Net
(held as ``low_res``, frozen) produces the 96x96 mouth-synced face; two
modulated upsampling stages (96+4 -> 200 -> 400, crop 8 px) give 384x384.

Everything after the L-Net (style encoder + decoder) is :class:`ENetHead`, a
view on the same layers (no parameters of its own, so checkpoint keys are
unchanged): it is a pure function of tensors once the noise is passed in, and
exports to ONNX, while the L-Net's FFT does not (the accel layer runs the head
on OpenVINO / ONNX Runtime and the L-Net in torch).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.models.video_retalking.networks.lnet import LNet, fold_time, unfold_time
from talkingface.face.stylegan import DownResBlock, StyleConv, ToRGB

_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
_STYLE_INPUT = 256  # the reference is resized to this before style encoding
_LNET_INPUT = 96
_PAD = 2  # reflect pad of the 96x96 image; after two x2 stages it is 8 px, cropped off


class ENet(nn.Module):
    """forward(audio, face (B,6,384,384), ref (B,3,384,384)) -> (pred (B,3,384,384), low_res (B,3,96,96)).

    ``face`` = [masked input | reference] in [0, 1] (what the L-Net sees, resized
    to 96), ``ref`` = the appearance image for the style code; the official
    pipeline passes ``face[:, 3:]`` as ``ref``. ``pred`` is not clamped.

    Noise: ``noise`` = one tensor (or None) per style conv (4 of them, shapes
    (B,1,200,200) x2 and (B,1,400,400) x2), else drawn from ``generator``
    (default: the global RNG, like the official code). The 4 maps may also be
    passed positionally after ``gt_sequences`` (:meth:`draw_noise` makes them:
    the same RNG calls, so the same values, as the draws inside the call).
    """

    num_noises = 4

    def __init__(self, num_style_feat: int = 512, lnet: LNet | None = None, concat: bool = False) -> None:
        super().__init__()
        if concat:
            raise NotImplementedError("ENet(concat=True) has no released checkpoint and is not supported")
        self.low_res = lnet if lnet is not None else LNet()
        for param in self.low_res.parameters():
            param.requires_grad = False
        self.num_style_feat = num_style_feat

        in_ch = _CHANNELS[128]
        self.conv_body_first = nn.Conv2d(3, in_ch, 1)
        self.conv_body_down = nn.ModuleList()
        for log_size in range(8, 2, -1):  # 256 -> 4
            out_ch = _CHANNELS[2 ** (log_size - 1)]
            self.conv_body_down.append(DownResBlock(in_ch, out_ch, mode="down"))
            in_ch = out_ch
        self.final_linear = nn.Linear(_CHANNELS[4] * 4 * 4, num_style_feat)
        self.final_conv = nn.Conv2d(in_ch, _CHANNELS[4], 3, 1, 1)

        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = 3
        for log_size in (7, 8):
            out_ch = _CHANNELS[2 ** log_size]
            self.style_convs.append(StyleConv(in_ch, out_ch, 3, num_style_feat, sample_mode="upsample"))
            self.style_convs.append(StyleConv(out_ch, out_ch, 3, num_style_feat))
            self.to_rgbs.append(ToRGB(out_ch, num_style_feat, upsample=True))
            in_ch = out_ch
        # not a registered child: its layers are this module's, under this module's checkpoint keys
        object.__setattr__(self, "head", ENetHead(self))

    def noise_shapes(self, low_res_size: tuple[int, int] = (_LNET_INPUT, _LNET_INPUT)) -> list[tuple[int, int]]:
        """(H, W) of each style conv's noise map for an L-Net output of ``low_res_size`` (96: 200 x2, 400 x2)."""
        h, w = low_res_size[0] + 2 * _PAD, low_res_size[1] + 2 * _PAD
        return [(h * 2 ** (i // 2 + 1), w * 2 ** (i // 2 + 1)) for i in range(self.num_noises)]

    def draw_noise(self, batch: int, generator: torch.Generator | None = None,
                   device: str | torch.device = "cpu",
                   low_res_size: tuple[int, int] = (_LNET_INPUT, _LNET_INPUT)) -> list[torch.Tensor]:
        """The 4 fp32 noise maps the style convs would draw, drawn now, in their order, by the same calls
        (:func:`talkingface.face.stylegan.draw_noise`: ``torch.randn`` of (B,1,H,W) from ``generator``, else
        the global RNG). Nothing else in the call draws from the RNG (the L-Net has no randomness), so the
        values are the ones the call would draw; passed back in, they make the call a pure function of its
        inputs, which the head's ONNX / OpenVINO graph needs."""
        from talkingface.face.stylegan import draw_noise

        return [draw_noise(torch.empty(batch, 1, h, w, device=device), generator)
                for h, w in self.noise_shapes(low_res_size)]

    def style_code(self, ref: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) reference -> (B, 1, num_style_feat)."""
        feat = F.interpolate(ref, size=(_STYLE_INPUT, _STYLE_INPUT), mode="bilinear", align_corners=False)
        feat = F.leaky_relu(self.conv_body_first(feat), 0.2)
        for block in self.conv_body_down:
            feat = block(feat)
        feat = F.leaky_relu(self.final_conv(feat), 0.2)
        code = self.final_linear(feat.reshape(feat.shape[0], -1))
        return code.reshape(code.shape[0], -1, self.num_style_feat)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor, gt_sequences: torch.Tensor,
                *noise_maps: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch = audio_sequences.shape[0]
        sequence = face_sequences.dim() > 4
        inp, ref = torch.split(face_sequences, 3, dim=1)
        if sequence:
            audio_sequences = fold_time(audio_sequences, 1)
            inp, ref, gt_sequences = fold_time(inp, 2), fold_time(ref, 2), fold_time(gt_sequences, 2)
        if noise_maps:
            if noise is not None:
                raise ValueError("ENet: pass the noise maps either positionally or as noise=, not both")
            noise = noise_maps
        if noise is not None and len(noise) != self.num_noises:
            raise ValueError(f"ENet needs {self.num_noises} noise tensors (or None), got {len(noise)}")

        lnet_input = F.interpolate(torch.cat([inp, gt_sequences], dim=1), size=(_LNET_INPUT, _LNET_INPUT),
                                   mode="bilinear", align_corners=False)
        low_res = self.low_res(audio_sequences, lnet_input)
        if noise is not None and all(n is not None for n in noise):
            pred = self.head(ref, low_res, *noise)  # tensors only: the accel layer's backend may run it
        else:
            pred = self.head(ref, low_res, noise=noise, generator=generator)

        if sequence:
            pred = unfold_time(pred, batch)
            # official quirk: the sequence form returns low_res resized (nearest) to the output size
            low_res = unfold_time(F.interpolate(low_res, size=pred.shape[-2:]), batch)
        return pred, low_res


class ENetHead(nn.Module):
    """E-Net after the L-Net: forward(ref (B,3,H,W), low_res (B,3,96,96), *noise (4 maps)) -> pred (B,3,384,384).

    Holds the E-Net's own layers (shared, not copied; its ``state_dict`` keys are
    the E-Net's for the same layers). With the 4 noise maps passed positionally
    it is a pure function of its inputs (ONNX-exportable: no FFT, no RNG); with
    ``noise=`` / ``generator=`` instead, each style conv draws its own map as
    the official decoder does. The style code is computed before the L-Net in
    the official code; neither reads the other's output, so the order is free.
    """

    def __init__(self, enet: ENet) -> None:
        super().__init__()
        for name in ("conv_body_first", "conv_body_down", "final_conv", "final_linear", "style_convs", "to_rgbs"):
            setattr(self, name, getattr(enet, name))
        object.__setattr__(self, "style_code", enet.style_code)
        self.num_noises = enet.num_noises

    def forward(self, ref: torch.Tensor, low_res: torch.Tensor, *noise_maps: torch.Tensor,
                noise: Sequence[torch.Tensor | None] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        noises = list(noise_maps or noise or [None] * self.num_noises)
        style = self.style_code(ref)
        out = F.pad(low_res, (_PAD,) * 4, mode="reflect")
        skip = out
        for stage, to_rgb in enumerate(self.to_rgbs):
            out = self.style_convs[2 * stage](out, style, noises[2 * stage], generator)
            out = self.style_convs[2 * stage + 1](out, style, noises[2 * stage + 1], generator)
            skip = to_rgb(out, style, skip)
        crop = _PAD * 4
        return skip[:, :, crop:-crop, crop:-crop]
