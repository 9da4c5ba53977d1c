"""S3FD face detector: the network, box decoding, and the L-Net face boxes of a clip.

Two official files carry S3FD weights, in two layouts:

* ``s3fd-619a316812.pth`` (face-alignment; VideoReTalking's ``third_part/face_detection``
  and the detector in front of FAN): named layers ``conv1_1 ... conv7_2``, ``fc6`` a plain
  3x3 conv with padding 3, pool 3 floor-mode -> :class:`S3FD`.
* ``sfd_face.pth`` (syncnet_python ``detectors/s3fd``, the LSE face crops): ``vgg.N``,
  ``extras.N``, ``loc.N``, ``conf.N``, ``L2NormX_3``, ``fc6`` dilated (6) with padding 6,
  pool 3 ceil-mode -> :class:`SyncNetS3FD`.

The key sets differ (and so does the graph: fc6's dilation changes every
feature map after it), so one module cannot load both files strictly; the two
classes share :class:`L2Norm` and the anchor geometry (stride ``2**(k+2)``,
anchor ``4 * stride``, variances 0.1/0.2).
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

from talkingface.errors import NoFaceError
from talkingface.face.nms import nms

log = logging.getLogger(__name__)

BGR_MEAN = (104.0, 117.0, 123.0)
VARIANCES = (0.1, 0.2)
Box = tuple[int, int, int, int]


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (key ``weight``)."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return x / norm * self.weight.view(1, -1, 1, 1)


def _max_out_background(conf: torch.Tensor) -> torch.Tensor:
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
            out += [_max_out_background(conf) if conf.shape[1] == 4 else conf,
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
        return _one_per_frame(self.faces(images, batch_size), self.select, _frame_size(images), anchor)


def _frame_size(images) -> tuple[int, int]:
    """(height, width) of a frame sequence without materialising it (arrays and lazy clips)."""
    shape = getattr(images, "shape", None)
    return tuple(shape[1:3]) if shape is not None else tuple(np.asarray(images[0]).shape[:2])


def _one_per_frame(dets: list[np.ndarray], select, frame_size: tuple[int, int], anchor) -> list[Box | None]:
    from talkingface.face.select import choose_track

    if select is None and anchor is None:
        return [None if len(d) == 0 else tuple(int(v) for v in np.clip(d[int(np.argmax(d[:, 4])), :4], 0, None))
                for d in dets]  # type: ignore[misc]
    clipped = [np.concatenate([np.clip(d[:, :4], 0, None), d[:, 4:5]], 1) if len(d) else np.zeros((0, 5))
               for d in dets]
    return choose_track(clipped, select, frame_size, anchor)


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


# --------------------------------------------------------------------------- syncnet_python layout
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
                conf = _max_out_background(conf)
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

    def __init__(self, net: SyncNetS3FD, device: str | torch.device = "cpu") -> None:
        self.net = net.eval()
        self.device = torch.device(device)

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

    __call__ = detect_faces


def make_syncnet_detector(path: str | Path | None = None, *, weights: str = "official", seed: int = 0,
                          device: str | torch.device = "cpu",
                          root: str | Path | None = None) -> SyncNetS3FDDetector:
    """The evaluator's S3FD (``sfd_face.pth``), with ``detect_faces(image_rgb, conf_th, scales)``."""
    from talkingface.face import load_net

    net = load_net(SyncNetS3FD(), name="syncnet_s3fd", path=path, weights=weights, seed=seed, device=device,
                   root=root)
    return SyncNetS3FDDetector(net, device)


# --------------------------------------------------------------------------- dlib fallback
class DlibBoxDetector:
    """dlib HOG boxes with the :meth:`S3FDDetector.first_faces` contract.

    For runs without the S3FD file (dlib's weights ship with a package). dlib's
    boxes are tighter than S3FD's (brow to lip-chin); the L-Net crop then sees a
    closer face. Frames are shrunk so the longer side is at most ``max_side``;
    a frame where nothing is found at ``upsample`` is retried with 2x
    upsampling up to ``max_upsample`` (small faces; see
    :func:`~talkingface.face.landmarks.dlib_detect`). ``select`` is the
    ``face_select`` rule (None: the best-scoring face of each frame).
    """

    def __init__(self, max_side: int = 640, upsample: int = 0, max_upsample: int = 2, select=None) -> None:
        import dlib

        from talkingface.face.select import parse_rule

        self._detector = dlib.get_frontal_face_detector()
        self.max_side = max_side
        self.upsample = upsample
        self.max_upsample = max_upsample
        self.select = parse_rule(select)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(K, 5) x1, y1, x2, y2, score in frame pixels (clipped to the frame)."""
        from talkingface.face.landmarks import dlib_detect

        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                      interpolation=cv2.INTER_AREA)
        dets = dlib_detect(self._detector, small, self.upsample, self.max_upsample)
        dets[:, :4] = np.clip(dets[:, :4] / scale, 0, [w, h, w, h])
        return dets

    def best_box(self, image: np.ndarray) -> Box | None:
        dets = self.detect(image)
        if not len(dets):
            return None
        x1, y1, x2, y2 = dets[int(np.argmax(dets[:, 4])), :4]
        return int(x1), int(y1), int(x2), int(y2)

    def faces(self, images: np.ndarray, batch_size: int = 4) -> list[np.ndarray]:
        return [self.detect(image) for image in images]

    def first_faces(self, images: np.ndarray, batch_size: int = 4, anchor=None) -> list[Box | None]:
        if self.select is None and anchor is None:
            return [self.best_box(image) for image in images]
        return _one_per_frame(self.faces(images), self.select, _frame_size(images), anchor)


# --------------------------------------------------------------------------- L-Net face boxes of a clip
def smooth_boxes(boxes: np.ndarray, window: int = 5) -> np.ndarray:
    """The reference's ``get_smoothened_boxes``: in place, forward window, int truncation.

    Box i becomes the mean of boxes i..i+window-1; near the end the window is
    the last ``window`` boxes, which by then are already smoothed (the reference
    updates in place). A clip shorter than the window is averaged as a whole
    (the reference's negative slice would average only its last few boxes).
    """
    out = np.array(boxes, dtype=np.int64, copy=True)
    n = len(out)
    for i in range(n):
        span = out[i:i + window] if i + window <= n else out[max(0, n - window):]
        out[i] = np.mean(span, axis=0)
    return out


def fill_missing_boxes(raw: Sequence[Box | None]) -> tuple[np.ndarray, list[int]]:
    """(T, 4) boxes with gaps interpolated linearly between detections and held at the ends.

    Returns the filled boxes (rounded to int) and the indices of frames that had
    no detection. Raises :class:`NoFaceError` when no frame has one.
    """
    missing = [i for i, box in enumerate(raw) if box is None]
    found = [i for i, box in enumerate(raw) if box is not None]
    if not found:
        raise NoFaceError(f"no face detected in any of the {len(raw)} frame(s)",
                          hint="use a video with one clearly visible frontal face, or crop it to the face "
                               "with --crop")
    known = np.array([raw[i] for i in found], np.float64)
    t = np.arange(len(raw))
    filled = np.stack([np.interp(t, found, known[:, c]) for c in range(4)], 1)
    return np.rint(filled).astype(np.int64), missing


def face_boxes(frames: np.ndarray, detector, pads: Sequence[int] = (0, 20, 0, 0), nosmooth: bool = False,
               batch_size: int = 4, anchor: Sequence[float] | None = None) -> tuple[np.ndarray, list[int]]:
    """The L-Net face box of every frame: (T, 4) int ``y1, y2, x1, x2`` and the frames without a face.

    As the reference ``face_detect(..., jaw_correction=True)``: best face per frame,
    ``pads`` = (top, bottom, left, right) added and clipped to the frame, then a
    5-frame smoothing unless ``nosmooth``. Where the reference stops at the first
    frame without a face, those frames take boxes interpolated from their
    neighbours (logged); only a clip with no face at all raises
    :class:`NoFaceError`. ``detector`` has ``first_faces(frames, batch_size)``
    (:class:`S3FDDetector`, :class:`DlibBoxDetector`). Several faces: the
    detector's ``select`` rule, or with ``anchor`` (x1, y1, x2, y2: the clip crop
    box) the face inside it, one person for the whole clip
    (:mod:`talkingface.face.select`).
    """
    if anchor is None:
        raw = detector.first_faces(frames, batch_size=batch_size)
    else:
        raw = detector.first_faces(frames, batch_size=batch_size, anchor=anchor)
    try:
        boxes, missing = fill_missing_boxes(raw)
    except NoFaceError as exc:
        raise NoFaceError(f"face boxes: {exc.message}", hint=exc.hint) from None
    if missing:
        log.warning("face boxes: no face in %d of %d frame(s) (%s); boxes interpolated from neighbours",
                    len(missing), len(frames), _ranges(missing))
    pad_top, pad_bottom, pad_left, pad_right = (int(p) for p in pads)
    height, width = frames.shape[1:3]
    x1, y1, x2, y2 = boxes.T
    out = np.stack([np.maximum(0, y1 - pad_top), np.minimum(height, y2 + pad_bottom),
                    np.maximum(0, x1 - pad_left), np.minimum(width, x2 + pad_right)], 1)
    if not nosmooth:
        out = smooth_boxes(out)
    return out.astype(np.int64), missing


def _ranges(indices: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` for log lines."""
    from talkingface.face.select import ranges

    return ranges(indices)
