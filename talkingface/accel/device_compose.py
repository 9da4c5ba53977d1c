"""The compose stage for a batch of frames on the pipeline's device (the CUDA path; also runs on CPU).

Same steps and constants as ``VideoReTalkingPipeline.compose_frame`` + the
parts it calls (GFPGAN restore and paste-back, parsing, the two Laplacian
blends), but the frames stay on the device between steps, GFPGAN and ParseNet
run once per batch, and the warps, masks and blends are torch ops
(:mod:`talkingface.accel.torch_ops`). Only the 5-point face alignment is
computed on the CPU (as the CPU path: detector + ``estimateAffinePartial2D``).
tests/test_accel_compose.py checks it against the CPU compose.
"""
from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talkingface.accel import torch_ops

log = logging.getLogger(__name__)

MOUTH_CLASSES = (10, 11, 12)
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12)
#: cv2.getGaussianKernel's fixed kernels for sigma <= 0 and ksize <= 7
_SMALL_GAUSSIAN = {1: [1.0], 3: [0.25, 0.5, 0.25], 5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
                   7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]}


def warp_affine(images: torch.Tensor, matrices: np.ndarray, size: tuple[int, int],
                border_value: tuple[float, ...] | float = 0.0) -> torch.Tensor:
    """``cv2.warpAffine(img, M, size)`` (bilinear, constant border) for (B,C,H,W) float with (B,2,3) forward maps."""
    width, height = size
    batch, channels, src_h, src_w = images.shape
    inverse = np.stack([cv2.invertAffineTransform(np.asarray(m, np.float64)) for m in matrices])
    inv = torch.from_numpy(inverse).to(images.device, torch.float64)
    ys, xs = torch.meshgrid(torch.arange(height, device=images.device, dtype=torch.float64),
                            torch.arange(width, device=images.device, dtype=torch.float64), indexing="ij")
    sx = inv[:, 0, 0, None, None] * xs + inv[:, 0, 1, None, None] * ys + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * xs + inv[:, 1, 1, None, None] * ys + inv[:, 1, 2, None, None]
    grid = torch.stack([(2 * sx + 1) / src_w - 1, (2 * sy + 1) / src_h - 1], dim=-1).to(images.dtype)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    border = torch.as_tensor(border_value, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)
    if bool((border != 0).any()):
        inside = F.grid_sample(torch.ones_like(images[:, :1]), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        out = out + border * (1 - inside)
    return out


def _erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """``cv2.erode(mask, ones((k, k)))``: min over the window anchored at k//2, outside counts as +inf."""
    if k <= 1:
        return mask
    left = k // 2
    padded = F.pad(mask, (left, k - 1 - left, left, k - 1 - left), value=float("inf"))
    return -F.max_pool2d(-padded, k, stride=1)


def _gaussian_blur_ksize(mask: torch.Tensor, ksize: int) -> torch.Tensor:
    """``cv2.GaussianBlur(mask, (ksize, ksize), 0)``: sigma from ksize, OpenCV's fixed kernels up to 7."""
    if ksize in _SMALL_GAUSSIAN:
        kernel = torch.tensor(_SMALL_GAUSSIAN[ksize])
    else:
        kernel = torch_ops.gaussian_kernel(0.3 * ((ksize - 1) * 0.5 - 1) + 0.8, ksize)
    return torch_ops._separable(torch_ops._pad(mask, ksize // 2), kernel)


def soft_paste_mask(inverse: np.ndarray, face_size: int, height: int, width: int,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``restore.soft_paste_mask`` on the device: (soft, eroded) (1,1,H,W)."""
    ones = torch.ones(1, 1, face_size, face_size, device=device)
    inv_mask = warp_affine(ones, inverse[None], (width, height))
    eroded = _erode(inv_mask, 2)
    w_edge = int(float(eroded.sum()) ** 0.5) // 20
    center = _erode(eroded, w_edge * 2) if w_edge > 0 else eroded
    return _gaussian_blur_ksize(center, w_edge * 2 + 1), eroded


class DeviceComposer:
    """``(frames, preds, boxes) -> composed frames``: the pipeline's compose for a batch, on ``device``.

    ``restorer`` is the pipeline's :class:`~talkingface.face.restore.GFPGANRestorer`
    (None: enhancer none); ``parse_net`` a ParseNet to run batched on the device, or
    None to use ``parse_labels`` (image -> labels, e.g. the landmark parser of seeded runs).
    """

    def __init__(self, restorer: Any, parse_net: Any, parse_labels: Any, device: str,
                 autocast: Any = None, near_box: bool = True) -> None:
        """``near_box``: GFPGAN restores the face nearest each L-Net box (``face_select`` set); False: the
        face nearest the frame centre, as the official GFPGANer (``only_center_face``)."""
        import contextlib

        self.near_box = near_box
        self.restorer, self.parse_net, self.parse_labels = restorer, parse_net, parse_labels
        self.device = torch.device(device)
        self.autocast = autocast or contextlib.nullcontext

    def _upload(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image)).to(self.device, non_blocking=True).permute(2, 0, 1).float()

    @torch.inference_mode()
    def _restore(self, pasted_np: list[np.ndarray], pasted: list[torch.Tensor],
                 boxes: list[tuple[int, int, int, int]]) -> list[torch.Tensor]:
        """GFPGAN on the face nearest each box, pasted back softly (``GFPGANRestorer.enhance``), batched."""
        r = self.restorer
        if r is None:
            return pasted
        jobs = []
        for i, (image, (y1, y2, x1, x2)) in enumerate(zip(pasted_np, boxes)):
            if hasattr(r.detector, "hint"):  # a seeded five-point stand-in: where the face is (as restore_frame)
                r.detector.hint = (int(x1), int(y1), int(x2), int(y2))
            faces = r._faces(image, True, ((x1 + x2) / 2, (y1 + y2) / 2) if self.near_box else None)
            if not faces:
                continue
            affine = cv2.estimateAffinePartial2D(faces[0], r.template, method=cv2.LMEDS)[0]
            if affine is not None:
                jobs.append((i, affine))
        out = list(pasted)
        if not jobs:
            return out
        crops = torch.cat([warp_affine(pasted[i][None], affine[None], (r.size, r.size), r.border_value_rgb)
                           for i, affine in jobs])
        crops = crops.round().clamp(0, 255)  # cv2 warps uint8 images: the net sees uint8 pixels
        x = (crops / 255.0 - 0.5) / 0.5
        with self.autocast():
            noise = getattr(r, "noise", "stored")
            if noise == "stored":
                restored = _first(r.net(x))
            elif noise == "fresh":
                restored = _first(r.net(x, randomize_noise=True))
            else:  # seeded: face by face, so the generator's draws are the CPU path's, in its order
                restored = torch.cat([_first(r.net(x[k:k + 1], randomize_noise=True, generator=r.generator))
                                      for k in range(len(x))])
        restored = ((restored.float().clamp(-1, 1) + 1) / 2 * 255.0).round()
        for (i, affine), face in zip(jobs, restored):
            height, width = pasted[i].shape[-2:]
            inverse = cv2.invertAffineTransform(affine)
            back = warp_affine(face[None], inverse[None], (width, height)).round().clamp(0, 255)
            soft, eroded = soft_paste_mask(inverse, r.size, height, width, self.device)
            result = soft * (eroded * back) + (1 - soft) * pasted[i][None]
            out[i] = result[0].floor().clamp(0, 255)  # astype(np.uint8) truncates
        return out

    @torch.inference_mode()
    def _labels(self, restored: list[torch.Tensor], boxes: list[tuple[int, int, int, int]]) -> list[torch.Tensor]:
        crops = [image[:, y1:y2, x1:x2] for image, (y1, y2, x1, x2) in zip(restored, boxes)]
        if self.parse_net is None:
            return [torch.from_numpy(self.parse_labels(c.permute(1, 2, 0).to(torch.uint8).cpu().numpy())).to(
                self.device) for c in crops]
        size = self.parse_net.size
        x = torch.cat([torch_ops.resize(c[None], (size, size)).round().clamp(0, 255) for c in crops])
        with self.autocast():
            logits, _ = self.parse_net(x / 255.0 * 2 - 1)
        return list(logits.float().argmax(dim=1))

    @torch.inference_mode()
    def __call__(self, frames: list[np.ndarray], preds: np.ndarray, boxes: list[Any]) -> np.ndarray:
        boxes = [tuple(int(v) for v in box) for box in boxes]
        pasted_np = []
        for frame, pred, (y1, y2, x1, x2) in zip(frames, preds, boxes):
            pasted = frame.copy()
            pasted[y1:y2, x1:x2] = cv2.resize(pred, (x2 - x1, y2 - y1))
            pasted_np.append(pasted)
        originals = [self._upload(f) for f in frames]
        pasted = [self._upload(p) for p in pasted_np]
        restored = self._restore(pasted_np, pasted, boxes)
        labels = self._labels(restored, boxes)
        out = []
        for frame, paste, rest, lab, box in zip(originals, pasted, restored, labels, boxes):
            y1, y2, x1, x2 = box
            size = (x2 - x1, y2 - y1)
            height, width = frame.shape[-2:]
            mouth = torch.zeros(height, width, device=self.device)
            mouth[y1:y2, x1:x2] = torch_ops.class_mask(lab, MOUTH_CLASSES, size)
            mixed = torch_ops.blend_in_region(rest, paste, mouth, box, levels=10).float()
            face = torch_ops.class_mask(lab, FACE_CLASSES, size)
            mask = torch.zeros(height, width, device=self.device)
            mask[y1:max(y1 + 1, y2 - 5), x1:x2] = face[: max(1, y2 - 5 - y1)]
            mask = torch_ops.gaussian_blur(mask[None, None], 1.0)[0, 0]
            out.append(torch_ops.blend_in_region(mixed, frame, mask, box, levels=6))
        return torch.stack(out).permute(0, 2, 3, 1).cpu().numpy()


def _first(out: Any) -> torch.Tensor:
    """GFPGAN returns ``(image, ...)``; the image."""
    return out[0] if isinstance(out, tuple) else out
