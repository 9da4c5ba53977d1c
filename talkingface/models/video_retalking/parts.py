"""The named parts a :class:`VideoReTalkingPipeline` is composed of.

Each part is one callable with a narrow contract (RGB uint8 in, arrays out), so
the pipeline reads like the paper's figure and each part can be swapped or
tested alone. :func:`build_parts` loads official weights or ``seeded-v1``.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import torch

from talkingface.runtime import autocast

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """Callables of the pipeline (see each ``build_*`` for its contract)."""
    crop: Any            # (frames (T,H,W,3), out (T,256,256,3)) -> (crops256 (= out), box (4,), quad (4,))
    landmarks: Any       # images (N,h,w,3) -> (lm (N,68,2), missing frame indices)
    coefficients: Any    # (crops256, lm) -> (T, 262) 3DMM vectors
    expression: Any      # "neutral" | "smile" | image path -> (64,) expression coefficients
    dnet: Any            # (src (B,3,256,256) in [-1,1], drive (B,73,26)) -> fake (B,3,256,256)
    enet: Any            # (mel (B,1,80,16), img (B,6,384,384), generator) -> pred (B,3,384,384) BGR [0,1]
    enhance_face: Any    # image -> GPEN-enhanced image (same size)
    face_boxes: Any      # (frames, pads, nosmooth) -> (boxes (T,4) y1,y2,x1,x2, missing indices)
    restore: Any         # (frame, box y1,y2,x1,x2) -> GFPGAN-restored frame (the face in box, pasted back)
    parse_labels: Any    # image -> (S,S) face-parsing class labels (19 classes), any size
    blend_region: Any    # (a, b, mask, box, levels) -> Laplacian blend of a over b (whole frame or near box)
    face_blend: Any      # (generated frame, original frame, box, face mask of the box) -> final frame
    reset_noise: Any = None  # () -> None: restart seeded noise generators (once per clip)
    stand_ins: Any = None  # SeededStandIns of a seeded run (None with official weights)
    files: Any = None      # CheckpointFiles: the folder and every file the parts asked for
    compose_batch: Any = None  # accel: (frames, preds, boxes) -> composed frames on the device, or None
    enhance_faces: Any = None  # accel: images -> GPEN-enhanced images, networks batched, or None


def build_parts(config: Any, weights: Any, options: Any) -> Parts:
    """Every part, each file from ``options.checkpoint_dir`` (recorded in ``Parts.files``)."""
    from talkingface.models.video_retalking import face_parts
    from talkingface.models.video_retalking.networks import build_networks
    from talkingface.models.video_retalking.options import CheckpointFiles

    mode = "seeded" if weights is not None and weights.seeded else "official"
    seed = int(config.get("seed", 0))
    device = options.device
    files = CheckpointFiles(options.checkpoint_dir, seeded=mode == "seeded")
    for name in ("dnet", "lnet", "enet"):
        files.path(name)
    nets = build_networks(mode, seed=seed, device=device, root=files.root)
    from talkingface.accel import AccelOptions, accelerate

    accel = AccelOptions.from_config(config, device)  # accel hook: each loaded network run by the accel layer
    accelerate(nets.dnet, accel, "DNet")
    # the whole E-Net stays torch (the L-Net's FFT does not export); its head (style encoder + decoder, 85 % of
    # the E-Net's CPU time) runs on the CPU backend, fed noise drawn before the call (bench/results/onnx_backends.md)
    accelerate(nets.enet, dataclasses.replace(accel, cpu_backend="torch"), "ENet")
    accelerate(nets.enet.head, accel, "ENetHead")
    noise_as_inputs = accel.cpu_backend_for("ENetHead") is not None

    def dnet(src: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        with autocast(device, options.precision):
            out = nets.dnet(src.to(device), drive.to(device))["fake_image"]
        return out.float()

    def enet(mel: torch.Tensor, img: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        ref = img[:, 3:]
        with autocast(device, options.precision):
            if noise_as_inputs:  # the same draws as inside the call (ENet.draw_noise), made first: a pure graph
                noise = nets.enet.draw_noise(mel.shape[0], generator, device)
                pred, _ = nets.enet(mel.to(device), img.to(device), ref.to(device), *noise)
            else:
                pred, _ = nets.enet(mel.to(device), img.to(device), ref.to(device), generator=generator)
        return pred.float()

    return Parts(dnet=dnet, enet=enet, files=files, **face_parts.build(config, mode, seed, device, options, files))
