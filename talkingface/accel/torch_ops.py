"""Image ops of the compose stage in torch, so the CUDA path keeps frames on the device.

Each op reproduces the OpenCV call the CPU path makes, to within the rounding
that OpenCV's fixed-point uint8 arithmetic adds (tests/test_accel_ops.py
compares them on CPU):

* :func:`resize` = ``cv2.resize(INTER_LINEAR)`` (half-pixel centres, no antialias);
* :func:`pyr_down` / :func:`pyr_up` = ``cv2.pyrDown`` / ``cv2.pyrUp`` (5-tap
  binomial kernel; reflect-101 borders, pyrUp's right/bottom edge replicated as
  OpenCV does);
* :func:`gaussian_blur` = ``cv2.GaussianBlur(ksize=(0, 0), sigma)``;
* :func:`laplacian_blend` = :func:`talkingface.face.blend.laplacian_blend`;
* :func:`blend_in_region` = ``face_parts.blend_in_region``.

Images are float32 tensors (B, C, H, W) unless a docstring says otherwise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,h,w) with ``size`` = (w, h) as cv2 takes it; bilinear like INTER_LINEAR."""
    width, height = size
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=False)


def _pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-101 padding (OpenCV's BORDER_DEFAULT); replicate where a side is too short to reflect."""
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad,) * 4, mode=mode)


def _separable(x: torch.Tensor, kernel: torch.Tensor, stride: int = 1) -> torch.Tensor:
    channels = x.shape[1]
    k = kernel.to(x)
    n = k.numel()
    x = F.conv2d(x, k.view(1, 1, 1, n).expand(channels, 1, 1, n), stride=(1, stride), groups=channels)
    return F.conv2d(x, k.view(1, 1, n, 1).expand(channels, 1, n, 1), stride=(stride, 1), groups=channels)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """``cv2.pyrDown``: blur with the 5-tap binomial kernel, keep even rows/columns -> ((H+1)//2, (W+1)//2)."""
    return _separable(_pad(x, 2), _BINOMIAL, stride=2)


def _up_axis(x: torch.Tensor, dim: int, out: int) -> torch.Tensor:
    n = x.shape[dim]
    prev = torch.cat([x.narrow(dim, 1 if n > 1 else 0, 1), x.narrow(dim, 0, n - 1)], dim)  # s[i-1], s[-1]=s[1]
    nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim)  # s[i+1], s[n]=s[n-1]
    even = (prev + 6 * x + nxt) / 8
    odd = (x + nxt) / 2
    both = torch.stack([even, odd], dim + 1).flatten(dim, dim + 1)
    return both.narrow(dim, 0, out)


def pyr_up(x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``cv2.pyrUp(x, dstsize=size)`` with ``size`` = (w, h), default twice the input."""
    height, width = x.shape[-2:]
    w, h = size if size is not None else (2 * width, 2 * height)
    return _up_axis(_up_axis(x, 2, h), 3, w)


def gaussian_kernel(sigma: float, ksize: int = 0) -> torch.Tensor:
    """``cv2.getGaussianKernel``; ksize 0 -> OpenCV's float rule ``round(sigma*8+1) | 1``."""
    if ksize <= 0:
        ksize = int(round(sigma * 8 + 1)) | 1
    offsets = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    kernel = torch.exp(-(offsets ** 2) / (2 * sigma * sigma))
    return (kernel / kernel.sum()).float()


def gaussian_blur(x: torch.Tensor, sigma: float, ksize: int = 0) -> torch.Tensor:
    """``cv2.GaussianBlur(x, (ksize, ksize), sigma)`` with reflect-101 borders (same size)."""
    kernel = gaussian_kernel(sigma, ksize)
    return _separable(_pad(x, kernel.numel() // 2), kernel)


def laplacian_blend(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, levels: int = 6) -> torch.Tensor:
    """``a`` where ``mask`` is 1, ``b`` where 0, band by band; (B,C,H,W) images, (B,1,H,W) mask; not clipped."""
    if levels < 1:
        raise ValueError(f"laplacian_blend: levels must be >= 1, got {levels}")
    ga, gb, gm = [a], [b], [mask]
    for _ in range(levels):
        ga.append(pyr_down(ga[-1]))
        gb.append(pyr_down(gb[-1]))
        gm.append(pyr_down(gm[-1]))
    top = levels - 1
    out = None
    for i in range(top, -1, -1):
        if i == top:
            la, lb = ga[i], gb[i]
        else:
            size = (ga[i].shape[-1], ga[i].shape[-2])
            la, lb = ga[i] - pyr_up(ga[i + 1], size), gb[i] - pyr_up(gb[i + 1], size)
        band = la * gm[i] + lb * (1.0 - gm[i])
        out = band if out is None else pyr_up(out, (band.shape[-1], band.shape[-2])) + band
    full = mask.flatten(1).amin(1).eq(1.0) | mask.flatten(1).amax(1).eq(0.0)
    if bool(full.any()):  # all-ones / all-zeros masks return a / b exactly, as the CPU blend
        exact = torch.where(mask.flatten(1).amin(1).eq(1.0).view(-1, 1, 1, 1), a, b)
        out = torch.where(full.view(-1, 1, 1, 1), exact, out)
    return out


def expand_box(box: tuple[int, int, int, int], height: int, width: int, margin: float) -> tuple[int, int, int, int]:
    y1, y2, x1, x2 = box
    dy, dx = int((y2 - y1) * margin), int((x2 - x1) * margin)
    return max(0, y1 - dy), min(height, y2 + dy), max(0, x1 - dx), min(width, x2 + dx)


def blend_in_region(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, box: tuple[int, int, int, int],
                    levels: int, size: int = 512, margin: float = 0.25) -> torch.Tensor:
    """``face_parts.blend_in_region`` on the device: (3,H,W) float 0-255 images, (H,W) mask -> uint8 (3,H,W)."""
    height, width = b.shape[-2:]
    y1, y2, x1, x2 = expand_box(box, height, width, margin)
    region = [resize(x[None, :, y1:y2, x1:x2], (size, size)) for x in (a, b, mask[None])]
    blended = laplacian_blend(region[0], region[1], region[2], levels).clamp(0, 255)
    back = resize(blended, (x2 - x1, y2 - y1))[0]
    out = b.round().clamp(0, 255).to(torch.uint8).clone()
    out[:, y1:y2, x1:x2] = back.round().clamp(0, 255).to(torch.uint8)
    return out


def class_mask(labels: torch.Tensor, classes: tuple[int, ...], size: tuple[int, int]) -> torch.Tensor:
    """Soft (h, w) mask of ``classes`` in (S, S) integer labels, resized bilinear to ``size`` = (w, h)."""
    hard = torch.isin(labels, torch.tensor(classes, device=labels.device)).float()
    return resize(hard[None, None], size)[0, 0]
