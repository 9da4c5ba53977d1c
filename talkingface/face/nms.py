"""Greedy non-maximum suppression (torch in and out, numpy inside; no torchvision).

The face detectors of the reference use three NMS variants that differ only in
details which change results near the threshold: the ``+1`` pixel convention
of py-faster-rcnn (S3FD of face-alignment, RetinaFace of GPEN) or none
(syncnet_python), and a pre-NMS top-k. One function covers them, computing in
the dtype of the boxes given, so callers reproduce the reference's arithmetic.
"""
from __future__ import annotations

import numpy as np
import torch


def score_order(scores: torch.Tensor) -> torch.Tensor:
    """Indices by descending score; among equal scores the later index first.

    That is ``numpy.argsort(scores)[::-1]`` for the (stable) small-array sort the
    references use, so ties resolve the same way.
    """
    return torch.argsort(scores, stable=True).flip(0)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, *,
        offset: float = 0.0, top_k: int | None = None, keep_undefined: bool = False) -> torch.Tensor:
    """Indices of the boxes kept, highest score first.

    ``boxes`` (N, 4) as x1, y1, x2, y2; ``scores`` (N,). A box is dropped when its
    IoU with an already kept box is above ``iou_threshold`` (kept when equal).
    ``offset=1`` measures widths as ``x2 - x1 + 1`` (py-faster-rcnn pixels);
    ``top_k`` keeps only the best ``top_k`` candidates before suppression.
    An undefined IoU (NaN, from overflowing boxes) suppresses the box, as the
    numpy references (``ovr <= thresh`` keeps); ``keep_undefined=True`` keeps it,
    as torchvision's ``nms`` (suppresses only ``iou > thresh``; facexlib).
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"nms: boxes must be (N, 4) and scores (N,), got {tuple(boxes.shape)} / "
                         f"{tuple(scores.shape)}")
    order = score_order(scores)
    if top_k is not None:
        order = order[:top_k]
    if order.numel() == 0:
        return order
    # the greedy loop in numpy: the same elementwise float ops in the same order (so the same bits) as in
    # torch, at ~1 us instead of ~5 us per op; seeded S3FD keeps ~1700 boxes per frame (0.16 -> 0.03 s)
    x1, y1, x2, y2 = boxes.detach().cpu().numpy().T
    rest = order.cpu().numpy()
    keep = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # overflowing boxes: inf / NaN as in torch
        areas = (x2 - x1 + offset) * (y2 - y1 + offset)
        while rest.size > 0:
            i = rest[0]
            keep.append(i)
            rest = rest[1:]
            if rest.size == 0:
                break
            w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + offset, 0.0)
            h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + offset, 0.0)
            inter = w * h
            iou = inter / (areas[i] + areas[rest] - inter)
            rest = rest[~(iou > iou_threshold)] if keep_undefined else rest[iou <= iou_threshold]
    return torch.from_numpy(np.asarray(keep, dtype=np.int64))
