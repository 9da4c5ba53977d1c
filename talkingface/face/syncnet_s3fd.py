"""S3FD with syncnet_python's layout (``sfd_face.pth``): the detector of the LSE face crops.

syncnet_python's ``detectors/s3fd``: ``vgg.N``, ``extras.N``, ``loc.N``, ``conf.N``,
``L2NormX_3``, fc6 dilated (6) with padding 6, pool 3 ceil-mode; its own anchors
(``PriorBox``) and decoding (``Detect``). It shares :class:`~talkingface.face.s3fd.L2Norm`
and the max-out head with face-alignment's layout (:mod:`talkingface.face.s3fd`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.face.nms import nms
from talkingface.face.s3fd import BGR_MEAN, VARIANCES, L2Norm, max_out_background


def _syncnet_vgg() -> nn.ModuleList:
    """VGG trunk with syncnet_python's indices (ReLU/pool entries hold the numbering)."""
    layers: list[nn.Module] = []
    plan = [(3, 64), (64, 64), "P", (64, 128), (128, 128), "P", (128, 256), (256, 256), (256, 256), "C",
            (256, 512), (512, 512), (512, 512), "P", (512, 512), (512, 512), (512, 512), "P"]
    for step in plan:
        if step == "P":
            layers.append(nn.MaxPool2d(2, 2))
        elif step == "C":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(step[0], step[1], 3, 1, padding=1), nn.ReLU(inplace=True)]
    layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


class SyncNetS3FD(nn.Module):
    """S3FD with the key layout of syncnet_python's ``sfd_face.pth``.

    ``forward`` returns ``(loc (N, P, 4), conf logits (N, P, 2))`` over all anchors,
    level by level, row-major, as the reference concatenates them.
    """

    SOURCE_ENDS = (16, 23, 30)  # vgg indices after conv3_3, conv4_3, conv5_3 (+ReLU)

    def __init__(self) -> None:
        super().__init__()
        self.vgg = _syncnet_vgg()
        self.L2Norm3_3 = L2Norm(256, 10.0)
        self.L2Norm4_3 = L2Norm(512, 8.0)
        self.L2Norm5_3 = L2Norm(512, 5.0)
        self.extras = nn.ModuleList([nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
                                     nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1)])
        channels = (256, 512, 512, 1024, 512, 256)
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in channels])
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, padding=1)
                                   for i, c in enumerate(channels)])

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        sources = []
        norms = (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)
        start = 0
        for end, norm in zip(self.SOURCE_ENDS, norms):
            for layer in self.vgg[start:end]:
                x = layer(x)
            sources.append(norm(x))
            start = end
        for layer in self.vgg[start:]:
            x = layer(x)
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x))
            if k % 2 == 1:
                sources.append(x)
        return sources

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        sources = self.features(x)
        locs, confs, sizes = [], [], []
        for i, feat in enumerate(sources):
            conf = self.conf[i](feat)
            if i == 0:
                conf = max_out_background(conf)
            locs.append(self.loc[i](feat).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4))
            confs.append(conf.permute(0, 2, 3, 1).reshape(x.shape[0], -1, 2))
            sizes.append((feat.shape[2], feat.shape[3]))
        return torch.cat(locs, 1), torch.cat(confs, 1), sizes


def syncnet_priors(image_size: tuple[int, int], sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Normalised (cx, cy, w, h) anchors of syncnet_python's ``PriorBox`` (steps 4..128, sizes 16..512)."""
    im_h, im_w = image_size
    out = []
    for k, (fh, fw) in enumerate(sizes):
        step, min_size = 4 * 2 ** k, 16 * 2 ** k
        i, j = torch.meshgrid(torch.arange(fh, dtype=torch.float64), torch.arange(fw, dtype=torch.float64),
                              indexing="ij")
        cx = (j + 0.5) / (im_w / step)
        cy = (i + 0.5) / (im_h / step)
        wh = torch.tensor([min_size / im_w, min_size / im_h], dtype=torch.float64).expand(fh * fw, 2)
        out.append(torch.cat([torch.stack([cx.reshape(-1), cy.reshape(-1)], 1), wh], 1))
    return torch.cat(out).float()


def syncnet_detect(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor, *, conf_threshold: float = 0.05,
                   nms_threshold: float = 0.3, nms_top_k: int = 5000, top_k: int = 750) -> torch.Tensor:
    """syncnet_python's ``Detect``: (N, 2, top_k, 5) rows of score, x1, y1, x2, y2 (normalised), best first."""
    probs = F.softmax(conf, dim=-1)
    out = torch.zeros(loc.shape[0], 2, top_k, 5)
    for b in range(loc.shape[0]):
        l = loc[b]
        centre = priors[:, :2] + l[:, :2] * VARIANCES[0] * priors[:, 2:]
        wh = priors[:, 2:] * torch.exp(l[:, 2:] * VARIANCES[1])
        xy = centre - wh / 2
        boxes = torch.cat([xy, wh + xy], 1)
        mask = probs[b, :, 1] > conf_threshold
        scores, cand = probs[b, mask, 1], boxes[mask]
        if scores.numel() == 0:
            continue
        keep = nms(cand, scores, nms_threshold, top_k=nms_top_k)[:top_k]
        out[b, 1, :len(keep)] = torch.cat([scores[keep, None], cand[keep]], 1)
    return out


class SyncNetS3FDDetector:
    """syncnet_python's ``S3FD.detect_faces`` on :class:`SyncNetS3FD` (the LSE face crops).

    The frame (RGB uint8) is resized by each scale, the BGR means are subtracted
    from the matching channels (the net sees RGB), detections above ``conf_th``
    are mapped to frame pixels, then NMS 0.1 (no +1) over all scales.
    """

    def __init__(self, net: SyncNetS3FD, device: str | torch.device = "cpu", *, conf_threshold: float = 0.8,
                 scales: Sequence[float] = (1,)) -> None:
        self.net = net.eval()
        self.device = torch.device(device)
        self.conf_threshold = conf_threshold
        self.scales = tuple(scales)

    @torch.inference_mode()
    def detect_faces(self, image: np.ndarray, conf_th: float = 0.8, scales: Sequence[float] = (1,)) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> (K, 5) x1, y1, x2, y2, score in frame pixels, best first."""
        h, w = image.shape[:2]
        found = [np.zeros((0, 5))]
        for s in scales:
            scaled = cv2.resize(image, dsize=(0, 0), fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
            x = torch.from_numpy(scaled.astype(np.float32) - np.float32(BGR_MEAN[::-1]))
            x = x.permute(2, 0, 1)[None].to(self.device)
            loc, conf, sizes = self.net(x)
            priors = syncnet_priors(tuple(x.shape[2:]), sizes).to(self.device)
            det = syncnet_detect(loc.float(), conf.float(), priors)[0, 1]
            det = det[det[:, 0] > conf_th]
            scale = torch.tensor([w, h, w, h], dtype=torch.float32)
            found.append(torch.cat([det[:, 1:] * scale, det[:, :1]], 1).double().numpy())
        boxes = np.concatenate(found)
        if len(boxes) == 0:
            return boxes
        keep = nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), 0.1).numpy()
        return boxes[keep]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """:meth:`detect_faces` at this detector's ``conf_threshold`` and ``scales`` (the LSE crop contract)."""
        return self.detect_faces(image, self.conf_threshold, self.scales)


def make_syncnet_detector(path: str | Path | None = None, *, weights: str = "official", seed: int = 0,
                          device: str | torch.device = "cpu", root: str | Path | None = None,
                          conf_threshold: float = 0.8, scales: Sequence[float] = (1,)) -> SyncNetS3FDDetector:
    """The evaluator's S3FD (``sfd_face.pth``): ``detect_faces(image_rgb, conf_th, scales)``, or called on a
    frame at ``conf_threshold`` and ``scales`` (syncnet_python's ``run_pipeline``: 0.9 at scale 0.25)."""
    from talkingface.face import load_net

    net = load_net(SyncNetS3FD(), name="syncnet_s3fd", path=path, weights=weights, seed=seed, device=device,
                   root=root)
    return SyncNetS3FDDetector(net, device, conf_threshold=conf_threshold, scales=scales)
