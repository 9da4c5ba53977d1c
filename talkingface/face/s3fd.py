"""S3FD face detector of face-alignment's layout: the network, box decoding, :class:`S3FDDetector`.

Two official files carry S3FD weights, in two layouts:

* ``s3fd-619a316812.pth`` (face-alignment; VideoReTalking's ``third_part/face_detection``
  and the detector in front of FAN): named layers ``conv1_1 ... conv7_2``, ``fc6`` a plain
  3x3 conv with padding 3, pool 3 floor-mode -> :class:`S3FD`.
* ``sfd_face.pth`` (syncnet_python ``detectors/s3fd``, the LSE face crops): ``vgg.N``,
  ``extras.N``, ``loc.N``, ``conf.N``, ``L2NormX_3``, ``fc6`` dilated (6) with padding 6,
  pool 3 ceil-mode -> :class:`~talkingface.face.syncnet_s3fd.SyncNetS3FD`.

The key sets differ (and so does the graph: fc6's dilation changes every
feature map after it), so one module cannot load both files strictly; the two
classes share :class:`L2Norm` and the anchor geometry (stride ``2**(k+2)``,
anchor ``4 * stride``, variances 0.1/0.2).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.face.boxes import Box, frame_size, one_per_frame
from talkingface.face.nms import nms

log = logging.getLogger(__name__)

BGR_MEAN = (104.0, 117.0, 123.0)
VARIANCES = (0.1, 0.2)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (key ``weight``)."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return x / norm * self.weight.view(1, -1, 1, 1)


def max_out_background(conf: torch.Tensor) -> torch.Tensor:
    """First head: 3 background logits max-pooled into one, then the face logit (S3FD's max-out)."""
    return torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)


# --------------------------------------------------------------------------- face-alignment layout
_FA_CONVS = [  # name, in, out, kernel, padding (stride 1)
    ("conv1_1", 3, 64, 3, 1), ("conv1_2", 64, 64, 3, 1),
    ("conv2_1", 64, 128, 3, 1), ("conv2_2", 128, 128, 3, 1),
    ("conv3_1", 128, 256, 3, 1), ("conv3_2", 256, 256, 3, 1), ("conv3_3", 256, 256, 3, 1),
    ("conv4_1", 256, 512, 3, 1), ("conv4_2", 512, 512, 3, 1), ("conv4_3", 512, 512, 3, 1),
    ("conv5_1", 512, 512, 3, 1), ("conv5_2", 512, 512, 3, 1), ("conv5_3", 512, 512, 3, 1),
    ("fc6", 512, 1024, 3, 3), ("fc7", 1024, 1024, 1, 0),
    ("conv6_1", 1024, 256, 1, 0), ("conv7_1", 512, 128, 1, 0),
]
_FA_SOURCES = [("conv3_3_norm", 256, 4), ("conv4_3_norm", 512, 2), ("conv5_3_norm", 512, 2),
               ("fc7", 1024, 2), ("conv6_2", 512, 2), ("conv7_2", 256, 2)]


class S3FD(nn.Module):
    """S3FD with the key layout of ``s3fd-619a316812.pth``.

    ``forward`` takes a mean-subtracted (N, 3, H, W) float batch and returns the
    six (class logits, box regression) pairs as one flat list, class maps first,
    as the reference does; the first class map is already max-out reduced to 2
    channels.
    """

    def __init__(self) -> None:
        super().__init__()
        for name, cin, cout, k, p in _FA_CONVS:
            self.add_module(name, nn.Conv2d(cin, cout, k, 1, p))
        self.conv6_2 = nn.Conv2d(256, 512, 3, 2, 1)
        self.conv7_2 = nn.Conv2d(128, 256, 3, 2, 1)
        self.conv3_3_norm = L2Norm(256, 10.0)
        self.conv4_3_norm = L2Norm(512, 8.0)
        self.conv5_3_norm = L2Norm(512, 5.0)
        for source, channels, n_conf in _FA_SOURCES:
            self.add_module(f"{source}_mbox_conf", nn.Conv2d(channels, n_conf, 3, 1, 1))
            self.add_module(f"{source}_mbox_loc", nn.Conv2d(channels, 4, 3, 1, 1))

    def _block(self, h: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        for name in names:
            h = F.relu(getattr(self, name)(h))
        return h

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = F.max_pool2d(self._block(x, ("conv1_1", "conv1_2")), 2, 2)
        h = F.max_pool2d(self._block(h, ("conv2_1", "conv2_2")), 2, 2)
        f3 = self._block(h, ("conv3_1", "conv3_2", "conv3_3"))
        f4 = self._block(F.max_pool2d(f3, 2, 2), ("conv4_1", "conv4_2", "conv4_3"))
        f5 = self._block(F.max_pool2d(f4, 2, 2), ("conv5_1", "conv5_2", "conv5_3"))
        f7 = self._block(F.max_pool2d(f5, 2, 2), ("fc6", "fc7"))
        f6_2 = self._block(f7, ("conv6_1", "conv6_2"))
        f7_2 = self._block(f6_2, ("conv7_1", "conv7_2"))
        sources = [self.conv3_3_norm(f3), self.conv4_3_norm(f4), self.conv5_3_norm(f5), f7, f6_2, f7_2]
        out: list[torch.Tensor] = []
        for (name, _, _), feat in zip(_FA_SOURCES, sources):
            conf = getattr(self, f"{name}_mbox_conf")(feat)
            out += [max_out_background(conf) if conf.shape[1] == 4 else conf,
                    getattr(self, f"{name}_mbox_loc")(feat)]
        return out


def decode_s3fd(outputs: Sequence[torch.Tensor], score_threshold: float = 0.05,
                dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Raw net outputs -> per image (K, 5) x1, y1, x2, y2, face probability (pixels) in ``dtype``.

    Every anchor whose face probability exceeds ``score_threshold`` (0.05 in the
    reference) becomes a candidate, level by level in row-major order.
    VideoReTalking's ``third_part/face_detection`` decodes in float32,
    face-alignment 1.3.4 (in front of FAN) in float64.
    """
    batch = outputs[0].shape[0]
    per_image: list[list[torch.Tensor]] = [[] for _ in range(batch)]
    for level in range(len(outputs) // 2):
        prob = F.softmax(outputs[2 * level].float(), dim=1)[:, 1]
        reg = outputs[2 * level + 1].float()
        stride = 2 ** (level + 2)
        anchor = float(stride * 4)
        for b in range(batch):
            rows, cols = torch.nonzero(prob[b] > score_threshold, as_tuple=True)
            if rows.numel() == 0:
                continue
            loc = reg[b, :, rows, cols].t()  # float32: variance products and exp stay float32 as there
            centre = torch.stack([cols, rows], 1).to(dtype) * stride + stride / 2
            xy = centre + (loc[:, :2] * VARIANCES[0]).to(dtype) * anchor
            wh = anchor * torch.exp(loc[:, 2:] * VARIANCES[1]).to(dtype)
            xy = xy - wh / 2
            per_image[b].append(torch.cat([xy, wh + xy, prob[b, rows, cols, None].to(dtype)], 1))
    return [torch.cat(c) if c else torch.zeros((0, 5), dtype=dtype) for c in per_image]


def filter_detections(candidates: torch.Tensor, nms_threshold: float = 0.3,
                      min_score: float = 0.5) -> np.ndarray:
    """NMS (py-faster-rcnn, +1 px) then drop scores <= ``min_score``: (K, 5) best first."""
    if candidates.shape[0] == 0:
        return np.zeros((0, 5), np.float32)
    keep = nms(candidates[:, :4], candidates[:, 4], nms_threshold, offset=1.0)
    kept = candidates[keep]
    return kept[kept[:, 4] > min_score].cpu().numpy()


class S3FDDetector:
    """Face boxes from :class:`S3FD` on RGB uint8 frames, as the reference detectors call it.

    ``channel_order`` is the order the frames reach the network in, with the BGR
    means (104, 117, 123) subtracted in that order. ``"bgr"`` is what S3FD was
    trained on (face-alignment's detector in front of FAN). ``"rgb"`` reproduces
    VideoReTalking's L-Net crop path: ``inference.py`` hands OpenCV's BGR frames to
    ``get_detections_for_batch``, which reverses them, so the net sees RGB.
    ``select`` is the ``face_select`` rule (None: the best face of each frame).
    """

    select = None

    def __init__(self, net: S3FD, device: str | torch.device = "cpu", *, channel_order: str = "bgr",
                 nms_threshold: float = 0.3, min_score: float = 0.5,
                 decode_dtype: torch.dtype = torch.float32, select=None) -> None:
        from talkingface.face.select import parse_rule

        if channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        self.net = net.eval()
        self.device = torch.device(device)
        self.channel_order = channel_order
        self.nms_threshold = nms_threshold
        self.min_score = min_score
        self.decode_dtype = decode_dtype
        self.select = parse_rule(select)

    def _input(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device, torch.float32)
        if self.channel_order == "bgr":
            x = x.flip(-1)
        x = x - torch.tensor(BGR_MEAN, device=self.device)
        return x.permute(0, 3, 1, 2)

    @torch.inference_mode()
    def detect(self, images: np.ndarray) -> list[np.ndarray]:
        """(N, H, W, 3) RGB uint8 -> per image (K, 5) x1, y1, x2, y2, score, best first."""
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        outputs = self.net(self._input(images))
        return [filter_detections(c, self.nms_threshold, self.min_score)
                for c in decode_s3fd(outputs, dtype=self.decode_dtype)]

    def faces(self, images: np.ndarray, batch_size: int = 4) -> list[np.ndarray]:
        """Every face of every frame, (K, 5) per frame, in batches of ``batch_size``.

        On a CUDA out-of-memory error the batch is halved and retried, as the
        reference does.
        """
        results: list[np.ndarray] = []
        start = 0
        while start < len(images):
            try:
                dets = self.detect(images[start:start + batch_size])
            except torch.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size //= 2
                log.warning("S3FD out of memory; face detection batch size now %d", batch_size)
                continue
            results += dets
            start += len(dets)
        return results

    def first_faces(self, images: np.ndarray, batch_size: int = 4, anchor=None) -> list[Box | None]:
        """One face per frame as int (x1, y1, x2, y2) clipped at 0, or None.

        With neither ``select`` nor ``anchor``: the best face of each frame (the
        reference). Otherwise one person for the whole clip
        (:func:`talkingface.face.select.choose_track`).
        """
        return one_per_frame(self.faces(images, batch_size), self.select, frame_size(images), anchor)


def load_s3fd(path: str | Path | None = None, *, weights: str = "official", seed: int = 0,
              device: str | torch.device = "cpu", root: str | Path | None = None,
              channel_order: str = "rgb", select=None) -> S3FDDetector:
    """The S3FD of the L-Net face boxes (``s3fd-619a316812.pth``), as a :class:`S3FDDetector`.

    ``channel_order`` defaults to ``"rgb"``, the reference L-Net crop path (see
    :class:`S3FDDetector`); pass ``"bgr"`` for the detector in front of FAN.
    ``select`` is the ``face_select`` rule (None: best face per frame).
    """
    from talkingface.face import load_net

    net = load_net(S3FD(), name="s3fd", path=path, weights=weights, seed=seed, device=device, root=root)
    return S3FDDetector(net, device, channel_order=channel_order, select=select)
