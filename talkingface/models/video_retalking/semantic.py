"""3DMM coefficient windows that drive D-Net (facts from the reference inference).

Per frame the reference stores 262 floats: id 80 | exp 64 | tex 80 | angle 3 |
gamma 27 | trans 3 | 5 alignment params (w, h, s, tx, ty). D-Net takes, for
frame i, a 26-frame window clamped at the clip ends (i-13 .. i+12) of exp + angle + trans + (s, tx, ty) = 73 rows.
"""
from __future__ import annotations

import numpy as np
import torch

EXP = slice(80, 144)
ANGLE = slice(224, 227)
TRANS = slice(254, 257)
CROP = slice(259, 262)
WINDOW = 13


def window_indices(index: int, num_frames: int) -> np.ndarray:
    return np.clip(np.arange(index - WINDOW, index + WINDOW), 0, num_frames - 1)


def crop_norm_ratio(source: np.ndarray, targets: np.ndarray, alpha: float = 0.3) -> float:
    """Scale ratio between the source frame and the most similar target frame (expression + pose)."""
    exp_diff = np.mean(np.abs(targets[:, EXP] - source[:, EXP]), axis=1)
    angle_diff = np.mean(np.abs(targets[:, ANGLE] - source[:, ANGLE]), axis=1)
    best = int(np.argmin(alpha * exp_diff + (1 - alpha) * angle_diff))
    return float(source[0, -3] / targets[best, -3])


def driving_window(semantic: np.ndarray, index: int, ratio: float | None = None) -> torch.Tensor:
    """(73, 26) driving source for frame ``index``."""
    window = semantic[window_indices(index, semantic.shape[0])]
    crop = window[:, CROP].copy()
    if ratio:
        crop[:, 0] = crop[:, 0] * ratio
    coeff = np.concatenate([window[:, EXP], window[:, ANGLE], window[:, TRANS], crop], axis=1)
    return torch.from_numpy(coeff.astype(np.float32)).T.contiguous()


def driving_batch(semantic: np.ndarray, indices: list[int], expression: np.ndarray,
                  one_shot: bool) -> torch.Tensor:
    """D-Net inputs for several frames with the expression rows replaced by the template."""
    out = []
    for index in indices:
        source = semantic[0:1] if one_shot else semantic[index:index + 1]
        coeff = driving_window(semantic, index, crop_norm_ratio(source, semantic))
        coeff[:64, :] = torch.as_tensor(expression[:64], dtype=torch.float32)[:, None]
        out.append(coeff)
    return torch.stack(out)
