"""FAN (2DFAN4): 68 face landmarks as heatmaps, with face-alignment 1.3.4's crop and decoding.

VideoReTalking's ``KeypointExtractor`` runs ``face_alignment.FaceAlignment(_2D)``
(face-alignment 1.3.4): S3FD finds the face, a 256x256 crop around the box
centre (moved up by 12 % of the box height, scale ``(w + h) / 195``) goes
through FAN, and the 64x64 heatmap maxima (with a quarter-pixel nudge towards
the larger neighbour) are mapped back to integer image pixels.

The official file ``2DFAN4-cd938726ad.zip`` is a TorchScript archive; its
state dict is read out of it and loaded strictly into :class:`FAN`, whose keys
are those of face-alignment's Python ``FAN(num_modules=4)``.
"""
from __future__ import annotations

import collections
import io
import logging
import pickle
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.errors import CheckpointError

log = logging.getLogger(__name__)

REFERENCE_SCALE = 195.0  # S3FD's box-to-scale constant in face-alignment
HEATMAP = 64
RESOLUTION = 256


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation block whose output concatenates three conv stages (1/2, 1/4, 1/4 of the width)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        half, quarter = cout // 2, cout // 4
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _conv3x3(cin, half)
        self.bn2, self.conv2 = nn.BatchNorm2d(half), _conv3x3(half, quarter)
        self.bn3, self.conv3 = nn.BatchNorm2d(quarter), _conv3x3(quarter, quarter)
        self.downsample = None if cin == cout else nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(True), nn.Conv2d(cin, cout, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(F.relu(self.bn1(x)))
        b = self.conv2(F.relu(self.bn2(a)))
        c = self.conv3(F.relu(self.bn3(b)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat([a, b, c], 1) + skip


class HourGlass(nn.Module):
    """Recursive hourglass: ``b1_L`` (skip), ``b2_L`` (down), inner level, ``b3_L``; ``b2_plus_1`` at the bottom."""

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):  # registration order of the reference
            self.add_module(f"b1_{level}", ConvBlock(features, features))
            self.add_module(f"b2_{level}", ConvBlock(features, features))
        self.add_module("b2_plus_1", ConvBlock(features, features))
        for level in range(1, depth + 1):
            self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules["b2_plus_1"](low)
        low = self._modules[f"b3_{level}"](low)
        return up + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class FAN(nn.Module):
    """Stacked-hourglass landmark net; ``forward`` returns the last stack's (N, 68, H/4, W/4) heatmaps.

    Input: RGB in [0, 1], (N, 3, 256, 256) in use.
    """

    def __init__(self, num_modules: int = 4, num_points: int = 68) -> None:
        super().__init__()
        self.num_modules = num_modules
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        for i in range(num_modules):
            self.add_module(f"m{i}", HourGlass(4, 256))
            self.add_module(f"top_m_{i}", ConvBlock(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, 1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(256))
            self.add_module(f"l{i}", nn.Conv2d(256, num_points, 1))
            if i < num_modules - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, 1))
                self.add_module(f"al{i}", nn.Conv2d(num_points, 256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        previous = self.conv4(self.conv3(x))
        heatmaps = previous
        for i in range(self.num_modules):
            ll = self._modules[f"top_m_{i}"](self._modules[f"m{i}"](previous))
            ll = F.relu(self._modules[f"bn_end{i}"](self._modules[f"conv_last{i}"](ll)))
            heatmaps = self._modules[f"l{i}"](ll)
            if i < self.num_modules - 1:
                previous = previous + self._modules[f"bl{i}"](ll) + self._modules[f"al{i}"](heatmaps)
        return heatmaps


# --------------------------------------------------------------------------- geometry of face-alignment 1.3.4
def center_scale(box: np.ndarray) -> tuple[np.ndarray, float]:
    """Crop centre (x, y) and scale from a detector box x1, y1, x2, y2 (float64)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    centre = np.array([x2 - (x2 - x1) / 2.0, y2 - (y2 - y1) / 2.0])
    centre[1] = centre[1] - (y2 - y1) * 0.12
    return centre, (x2 - x1 + y2 - y1) / REFERENCE_SCALE


def _crop_corner(point: tuple[float, float], centre: np.ndarray, scale: float, resolution: float) -> np.ndarray:
    """Inverse crop transform of one point, in float32 torch and truncated to int (as the reference)."""
    h = 200.0 * scale
    t = torch.eye(3)
    t[0, 0] = resolution / h
    t[1, 1] = resolution / h
    t[0, 2] = resolution * (-float(centre[0]) / h + 0.5)
    t[1, 2] = resolution * (-float(centre[1]) / h + 0.5)
    pt = torch.tensor([point[0], point[1], 1.0])
    return torch.matmul(torch.inverse(t), pt)[:2].int().numpy()


def crop_face(image: np.ndarray, centre: np.ndarray, scale: float, resolution: int = RESOLUTION) -> np.ndarray:
    """The ``resolution`` square around ``centre`` (side ``200 * scale`` px), zero outside the image."""
    ul = _crop_corner((1, 1), centre, scale, resolution)
    br = _crop_corner((resolution, resolution), centre, scale, resolution)
    ht, wd = image.shape[:2]
    canvas = np.zeros((br[1] - ul[1], br[0] - ul[0], image.shape[2]), np.uint8)
    new_x = (max(1, -ul[0] + 1), min(br[0], wd) - ul[0])
    new_y = (max(1, -ul[1] + 1), min(br[1], ht) - ul[1])
    old_x = (max(1, ul[0] + 1), min(br[0], wd))
    old_y = (max(1, ul[1] + 1), min(br[1], ht))
    canvas[new_y[0] - 1:new_y[1], new_x[0] - 1:new_x[1]] = image[old_y[0] - 1:old_y[1], old_x[0] - 1:old_x[1]]
    return cv2.resize(canvas, dsize=(resolution, resolution), interpolation=cv2.INTER_LINEAR)


def heatmap_peaks(heatmaps: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C, 2) float32 peak positions in heatmap pixels (1-based, nudged, minus 0.5)."""
    n, c, h, w = heatmaps.shape
    idx = np.argmax(heatmaps.reshape(n, c, h * w), axis=2)
    px, py = idx % w, idx // h
    preds = np.stack([px + 1, py + 1], -1).astype(np.float32)
    inside = (px > 0) & (px < 63) & (py > 0) & (py < 63)  # face-alignment's fixed 64-px bounds
    ii, jj = np.nonzero(inside)
    x, y = px[ii, jj], py[ii, jj]
    hm = heatmaps[ii, jj]
    k = np.arange(len(ii))
    diff = np.stack([hm[k, y, x + 1] - hm[k, y, x - 1], hm[k, y + 1, x] - hm[k, y - 1, x]], -1)
    preds[ii, jj] += np.sign(diff) * 0.25
    return preds - 0.5


def to_image(points: np.ndarray, centre: np.ndarray, scale: float, resolution: int = HEATMAP) -> np.ndarray:
    """Heatmap points (C, 2) -> image pixels, truncated to int as face-alignment 1.3.4 does."""
    h = 200.0 * scale
    t = np.eye(3)
    t[0, 0] = resolution / h
    t[1, 1] = resolution / h
    t[0, 2] = resolution * (-centre[0] / h + 0.5)
    t[1, 2] = resolution * (-centre[1] / h + 0.5)
    inv = np.linalg.pinv(t)
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    out = np.stack([inv[0, 0] * x + inv[0, 1] * y + inv[0, 2], inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]], -1)
    return out.astype(np.int32).astype(np.float32)


# --------------------------------------------------------------------------- loading
_STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                   "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                   "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                   "BoolStorage": torch.bool}


class _ScriptObject:
    """A TorchScript module object from ``data.pkl``: only its attribute dict is kept."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *_: object) -> torch.Tensor:
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


class _ArchiveUnpickler(pickle.Unpickler):
    """Reads tensors and module attributes only: no TorchScript code is loaded or run."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a TorchScript archive")

    def persistent_load(self, pid):
        kind, dtype, key, _location, _numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
        return torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)


def _flatten(obj: _ScriptObject, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, value in getattr(obj, "state", {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            out.update(_flatten(value, f"{prefix}{name}."))
    return out


def script_archive_state(path: Path) -> dict[str, torch.Tensor]:
    """Parameters and buffers of a TorchScript archive, by module path, without ``torch.jit``."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        data_pkl = next(n for n in names if n.endswith("data.pkl") and n.count("/") == 1)
        prefix = data_pkl[: -len("data.pkl")]
        root = _ArchiveUnpickler(archive.read(data_pkl), archive, prefix).load()
    if not isinstance(root, _ScriptObject):
        raise pickle.UnpicklingError("data.pkl does not hold a module")
    return _flatten(root)


def read_fan_state(path: Path) -> dict[str, torch.Tensor]:
    """State dict of a FAN file: face-alignment's TorchScript archive, or a plain state dict.

    The archive is read as data (its pickled module attributes and tensor
    storages); ``torch.jit.load`` is only the fallback for layouts this reader
    does not know.
    """
    from talkingface.weights.seeded import torch_load

    if not path.is_file():
        return torch_load(path)  # the shared "not found" error
    is_script = False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_script = any("/code/" in f"/{name}" or name.endswith("constants.pkl") for name in archive.namelist())
    if not is_script:
        return torch_load(path)
    try:
        return script_archive_state(path)
    except Exception as exc:  # noqa: BLE001 - unknown layout: let torch.jit try
        log.info("%s: reading the archive as data failed (%s); trying torch.jit.load", path, exc)
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated; still the reader of this official format
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # damaged archive: torch raises several types
        raise CheckpointError(f"cannot read TorchScript archive {path}: {type(exc).__name__}",
                              hint="the file is truncated or damaged; re-download it") from None
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def load_fan(path: str | Path | None = None, *, weights: str = "official", seed: int = 0,
             device: str | torch.device = "cpu", root: str | Path | None = None) -> FAN:
    """FAN(4) from ``2DFAN4-cd938726ad.zip`` (or ``seeded-v1``), eval mode on ``device``."""
    from talkingface.face import load_net

    return load_net(FAN(4), name="fan", path=path, weights=weights, seed=seed, device=device, root=root,
                    read=read_fan_state)
