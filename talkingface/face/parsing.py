"""Face parsing (GPEN's ParseNet, 19 CelebAMask-HQ classes) -> soft region masks.

VideoReTalking uses it twice: the face region (classes 1-7, 10-12) decides where
GPEN's restored face is pasted, and the mouth classes decide where the lip-synced
result is blended into the enhanced frame. The network is written here with the
key names of ``ParseNet-latest.pth`` so the official file loads strictly.

Classes: 0 background, 1 skin, 2 nose, 3 eye_g, 4 l_eye, 5 r_eye, 6 l_brow,
7 r_brow, 8 l_ear, 9 r_ear, 10 mouth, 11 u_lip, 12 l_lip, 13 hair, 14 hat,
15 ear_r, 16 neck_l, 17 neck, 18 cloth.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.errors import InputMediaError

log = logging.getLogger(__name__)

PathLike = str | Path
NUM_CLASSES = 19
PARSE_SIZE = 512
#: GPEN's default mask map: every face part but ears (8, 9) and hair/neck/cloth (13-18).
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12)


class _Conv(nn.Module):
    """Reflection-padded conv (+ optional 2x nearest upsampling before, BN and LeakyReLU after)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, scale: str = "none", norm: bool = False,
                 act: bool = False) -> None:
        super().__init__()
        self.up = scale == "up"
        self.act = act
        self.reflection_pad = nn.ReflectionPad2d(int(np.ceil((kernel - 1) / 2)))
        self.conv2d = nn.Conv2d(cin, cout, kernel, 2 if scale == "down" else 1, bias=not norm)
        if norm:  # key names of GPEN's NormLayer: norm.norm.*
            self.norm = nn.Module()
            self.norm.norm = nn.BatchNorm2d(cout)
        else:
            self.norm = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv2d(self.reflection_pad(x))
        if self.norm is not None:
            x = self.norm.norm(x)
        return F.leaky_relu(x, 0.2) if self.act else x


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, scale: str = "none") -> None:
        super().__init__()
        self.shortcut_func = _Conv(cin, cout, 3, scale) if scale != "none" or cin != cout else None
        first, second = {"down": ("none", "down"), "up": ("up", "none"), "none": ("none", "none")}[scale]
        self.conv1 = _Conv(cin, cout, 3, first, norm=True, act=True)
        self.conv2 = _Conv(cout, cout, 3, second, norm=True, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut_func is None else self.shortcut_func(x)
        return identity + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """``(B,3,S,S)`` RGB in [-1,1] -> ``(mask logits (B,19,S,S), image (B,3,S,S))``.

    GPEN's configuration (``in_size=out_size=512``, min feature 32, base 64
    channels clipped to [32, 256], 10 residual body blocks, BN + LeakyReLU(0.2)).
    Smaller ``size`` builds the same code at lower resolution (tests).
    """

    def __init__(self, size: int = PARSE_SIZE, min_feat_size: int = 32, base_ch: int = 64,
                 parsing_ch: int = NUM_CLASSES, res_depth: int = 10, ch_range: tuple[int, int] = (32, 256)) -> None:
        super().__init__()
        self.size = size
        lo, hi = ch_range

        def clip(c: int) -> int:
            return max(lo, min(c, hi))

        steps = int(np.log2(size // min(size, min_feat_size)))
        encoder: list[nn.Module] = [_Conv(3, base_ch, 3)]
        head = base_ch
        for _ in range(steps):
            encoder.append(_ResBlock(clip(head), clip(head * 2), "down"))
            head *= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*[_ResBlock(clip(head), clip(head)) for _ in range(res_depth)])
        decoder = []
        for _ in range(steps):
            decoder.append(_ResBlock(clip(head), clip(head // 2), "up"))
            head //= 2
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = _Conv(clip(head), 3)
        self.out_mask_conv = _Conv(clip(head), parsing_ch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.encoder(x)
        x = self.decoder(feat + self.body(feat))
        return self.out_mask_conv(x), self.out_img_conv(x)


def load_parsenet(path: PathLike | None = None, *, weights: str = "official", seed: int = 0,
                  device: str | torch.device = "cpu", root: PathLike | None = None,
                  size: int = PARSE_SIZE) -> ParseNet:
    """``ParseNet-latest.pth`` (a plain state dict, strict) or seeded-v1 weights."""
    from talkingface.face import load_net

    return load_net(ParseNet(size), name="parsenet", path=path, weights=weights, seed=seed, device=device,
                    root=root)


def labels_to_mask(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Per-pixel class labels -> 0/255 uint8 mask of the selected classes (GPEN's ``tenor2mask``)."""
    return np.where(np.isin(labels, np.asarray(list(classes), np.int64)), 255, 0).astype(np.uint8)


@torch.inference_mode()
def parse_labels(net: ParseNet, image_rgb: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Class label per pixel ``(S,S)`` int64 of an RGB image resized to the net size."""
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or min(image_rgb.shape[:2]) < 1:
        raise InputMediaError(f"face parsing: expected a non-empty (H, W, 3) RGB image, got shape {image_rgb.shape}")
    size = net.size
    resized = cv2.resize(np.ascontiguousarray(image_rgb), (size, size))
    x = torch.from_numpy(resized.astype(np.float64) / 255.0 * 2 - 1).permute(2, 0, 1)[None].float().to(device)
    logits, _ = net(x)
    return logits.argmax(dim=1)[0].cpu().numpy()


def parse_mask(net: ParseNet, image_rgb: np.ndarray, classes: Sequence[int] = FACE_CLASSES,
               device: str | torch.device = "cpu") -> np.ndarray:
    """Float32 mask in [0,1] of ``classes`` at the image size.

    As the reference: resize to 512, parse, argmax, 0/255 mask of the classes,
    resized back to the image (bilinear, so edges are soft) and divided by 255.
    """
    labels = parse_labels(net, image_rgb, device)
    mask = labels_to_mask(labels, classes)
    h, w = np.asarray(image_rgb).shape[:2]
    return cv2.resize(mask, (w, h)).astype(np.float32) / 255.0
