"""RetinaFace-R50 (GPEN's face detector): boxes and five landmarks per face.

Key layout of ``RetinaFace-R50.pth`` (after removing ``module.``): ``body.*`` is a
torchvision-style ResNet-50 up to ``layer4`` (the reference wraps
``torchvision.models.resnet50`` in ``IntermediateLayerGetter``; :class:`ResNet50Body`
reproduces its parameter names without torchvision), then ``fpn.*``,
``ssh1..3.*`` and the ``ClassHead`` / ``BboxHead`` / ``LandmarkHead`` lists.

Detection follows ``retinaface_detection.py``: frames longer than 1500 px are
scaled to 1000 px, BGR minus (104, 117, 123), anchors of ``cfg_re50``
(sizes 16/32, 64/128, 256/512 at strides 8, 16, 32), variances 0.1/0.2,
score > 0.9, top 5000, NMS 0.4 (+1 px), at most 750 faces.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.face.nms import nms, score_order

log = logging.getLogger(__name__)

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
BGR_MEAN = (104.0, 117.0, 123.0)


# --------------------------------------------------------------------------- ResNet-50 body
class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), torchvision parameter names."""

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50Body(nn.Module):
    """Stem + layer1..4 of ResNet-50; returns the layer2, layer3, layer4 maps (strides 8, 16, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
            layer = [Bottleneck(cin, width, stride)] + [Bottleneck(width * 4, width) for _ in range(blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*layer))
            cin = width * 4

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


# --------------------------------------------------------------------------- FPN, SSH, heads
def _conv_bn(cin: int, cout: int, kernel: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:  # the reference's LeakyReLU(0): out_channels 256 > 64 gives slope 0
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, 1, True)
        self.output2 = _conv_bn(in_channels[1], out, 1, True)
        self.output3 = _conv_bn(in_channels[2], out, 1, True)
        self.merge1 = _conv_bn(out, out, 3, True)
        self.merge2 = _conv_bn(out, out, 3, True)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    """Context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches, concatenated, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3, True)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3, True)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        c7 = self.conv7x7_3(self.conv7X7_2(c5_1))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), c7], 1))


class _Head(nn.Module):
    def __init__(self, cin: int, anchors: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.conv1x1 = nn.Conv2d(cin, anchors * size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.size)


class RetinaFace(nn.Module):
    """RetinaFace with a ResNet-50 body; ``forward`` -> (loc (N,P,4), probs (N,P,2), landmarks (N,P,10))."""

    def __init__(self, channels: int = 256, anchors: int = 2) -> None:
        super().__init__()
        self.body = ResNet50Body()
        self.fpn = FPN((512, 1024, 2048), channels)
        self.ssh1, self.ssh2, self.ssh3 = SSH(channels, channels), SSH(channels, channels), SSH(channels, channels)
        self.ClassHead = nn.ModuleList([_Head(channels, anchors, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(channels, anchors, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(channels, anchors, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.fpn(self.body(x))
        feats = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], 1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], 1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], 1)
        return loc, F.softmax(conf, dim=-1), landms


# --------------------------------------------------------------------------- anchors and decoding
def prior_boxes(height: int, width: int) -> torch.Tensor:
    """(P, 4) normalised cx, cy, w, h anchors; per level row-major cells, two sizes per cell."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = -(-height // step), -(-width // step)
        i, j = torch.meshgrid(torch.arange(fh, dtype=torch.float64), torch.arange(fw, dtype=torch.float64),
                              indexing="ij")
        cx = ((j + 0.5) * step / width).reshape(-1, 1)
        cy = ((i + 0.5) * step / height).reshape(-1, 1)
        per_size = [torch.cat([cx, cy, torch.full_like(cx, s / width), torch.full_like(cy, s / height)], 1)
                    for s in sizes]
        out.append(torch.stack(per_size, 1).reshape(-1, 4))
    return torch.cat(out).float()


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Regression -> x1, y1, x2, y2 (normalised)."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    wh = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    xy = centre - wh / 2
    return torch.cat([xy, wh + xy], 1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Regression -> (P, 5, 2) landmark points (normalised)."""
    pts = pre.reshape(-1, 5, 2)
    return priors[:, None, :2] + pts * VARIANCES[0] * priors[:, None, 2:]


class RetinaFaceDetector:
    """``image RGB uint8 (H, W, 3) -> (boxes (K, 5) x1 y1 x2 y2 score, landmarks (K, 5, 2))``, best first.

    Landmarks are eye centres, nose tip, mouth corners as (x, y) points (the
    reference returns them as x1..x5, y1..y5 rows; same numbers).
    """

    def __init__(self, net: RetinaFace, device: str | torch.device = "cpu", *, confidence_threshold: float = 0.9,
                 nms_threshold: float = 0.4, top_k: int | None = 5000, keep_top_k: int | None = 750,
                 downscale_above: int | None = 1500, nms_offset: float = 1.0) -> None:
        self.net = net.eval()
        self.device = torch.device(device)
        self.confidence_threshold = confidence_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.keep_top_k = keep_top_k
        self.downscale_above = downscale_above
        self.nms_offset = nms_offset

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img = np.float32(image[:, :, ::-1])  # RGB -> BGR: the net was trained on OpenCV frames
        ss = 1.0
        if self.downscale_above is not None and max(img.shape[:2]) > self.downscale_above:  # GPEN's "tricky" rescale
            ss = 1000.0 / max(img.shape[:2])
            img = cv2.resize(img, (0, 0), fx=ss, fy=ss)
        height, width = img.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray((img - np.float32(BGR_MEAN)).transpose(2, 0, 1)))[None]
        loc, conf, landms = self.net(x.to(self.device))
        priors = prior_boxes(height, width).to(self.device)
        scale = torch.tensor([width, height], dtype=torch.float32, device=self.device)
        boxes = (decode_boxes(loc[0].float(), priors) * scale.repeat(2)).cpu()
        points = (decode_landmarks(landms[0].float(), priors) * scale).cpu()
        scores = conf[0, :, 1].float().cpu()
        inds = torch.nonzero(scores > self.confidence_threshold)[:, 0]
        order = inds[score_order(scores[inds])][: self.top_k]
        boxes, points, scores = boxes[order], points[order], scores[order]
        keep = nms(boxes, scores, self.nms_threshold, offset=self.nms_offset)[: self.keep_top_k]
        dets = torch.cat([boxes[keep], scores[keep, None]], 1).numpy()
        return dets / ss, points[keep].numpy() / ss

    __call__ = detect


#: facexlib's ``retinaface_resnet50`` as GFPGANer calls it (``detect_faces(img, 0.97)``, original size):
#: score > 0.97, torchvision NMS 0.4 (no +1 px), no top-k cut, no downscaling of large frames.
FACEXLIB_OPTIONS = {"confidence_threshold": 0.97, "nms_threshold": 0.4, "top_k": None, "keep_top_k": None,
                    "downscale_above": None, "nms_offset": 0.0}


def load_retinaface(path: str | Path | None = None, *, weights: str = "official", seed: int = 0,
                    device: str | torch.device = "cpu", root: str | Path | None = None,
                    flavour: str = "gpen", **detector_options) -> RetinaFaceDetector:
    """A RetinaFace-R50 detector, ``seeded-v1`` or from its official file.

    ``flavour="gpen"``: GPEN's ``RetinaFace-R50.pth`` with ``RetinaFaceDetection.detect``'s
    rules; ``flavour="facexlib"``: facexlib's ``detection_Resnet50_Final.pth`` (same
    network and keys) with :data:`FACEXLIB_OPTIONS`, as GFPGANer uses it.
    """
    from talkingface.face import load_net

    if flavour not in ("gpen", "facexlib"):
        raise ValueError(f"flavour must be 'gpen' or 'facexlib', got {flavour!r}")
    name = "retinaface" if flavour == "gpen" else "gfpgan_detection"
    net = load_net(RetinaFace(), name=name, path=path, weights=weights, seed=seed, device=device, root=root)
    options = {**(FACEXLIB_OPTIONS if flavour == "facexlib" else {}), **detector_options}
    return RetinaFaceDetector(net, device, **options)
