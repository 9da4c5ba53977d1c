"""Greedy non-maximum suppression in torch (no torchvision).

The face detectors of the reference use three NMS variants that differ only in
details which change results near the threshold: the ``+1`` pixel convention
of py-faster-rcnn (S3FD of face-alignment, RetinaFace of GPEN) or none
(syncnet_python), and a pre-NMS top-k. One function covers them, computing in
the dtype of the boxes given, so callers reproduce the reference's arithmetic.
"""
from __future__ import annotations

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
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + offset) * (y2 - y1 + offset)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        if rest.numel() == 0:
            break
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + offset).clamp(min=0.0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + offset).clamp(min=0.0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou > iou_threshold)] if keep_undefined else rest[iou <= iou_threshold]
    return torch.stack(keep)
