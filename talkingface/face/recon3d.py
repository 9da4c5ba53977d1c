"""3DMM coefficients of each cropped face (Deep3DFaceRecon's ResNet-50 regressor).

VideoReTalking drives D-Net with 3DMM coefficients: each 256x256 crop is
aligned to a 224x224 image from five landmarks and the 3D mean face (POS
least squares), and the ResNet-50 ``net_recon`` of ``face3d_pretrain_epoch_20.pth``
regresses 257 numbers: id (80), exp (64), tex (80), angle (3), gamma (27),
trans (3). The pipeline stores these with the 5 alignment numbers
``(W, H, s, tx, ty)`` appended: the 262-float "semantic" vector per frame.

The network is written here (no torchvision); its state-dict keys are those
of the reference ``ReconNetWrapper`` (``backbone.*`` + ``final_layers.*``) so
the official file loads unchanged with ``strict=True``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from talkingface.errors import CheckpointError, ConfigError, InputMediaError

log = logging.getLogger(__name__)

PathLike = str | Path

#: Output widths of the 7 final 1x1 convolutions: id, exp, tex, angle, gamma, (tx, ty), tz.
FINAL_DIMS = (80, 64, 80, 3, 27, 2, 1)
COEFF_DIM = sum(FINAL_DIMS)  # 257
SEMANTIC_DIM = COEFF_DIM + 5  # 262: + (W, H, s, tx, ty)
#: Slices of the 257-vector (the reference ``split_coeff``).
SPLITS = {"id": slice(0, 80), "exp": slice(80, 144), "tex": slice(144, 224), "angle": slice(224, 227),
          "gamma": slice(227, 254), "trans": slice(254, 257)}
TARGET_SIZE = 224.0
RESCALE_FACTOR = 102.0
#: 68-point indices (1-based in the reference) used for the 5 points: nose, eye corners, mouth corners.
_LM5_IDX = np.array([31, 37, 40, 43, 46, 49, 55]) - 1

#: Plausible 5-point 3D template (left eye, right eye, nose tip, mouth corners) in the BFM's
#: normalised units, used ONLY with seeded weights when checkpoints/BFM is absent. The numbers are
#: rounded values of the BFM mean-face points that ``similarity_Lm3D_all.mat`` yields (approximate,
#: not read from the file); with seeded weights the coefficients are meaningless anyway, this only
#: keeps the alignment geometry realistic (face centred, eyes above mouth, similar scale).
_SEEDED_LM3D = np.array([[-0.3115, 0.2904, 0.1338],
                         [0.3098, 0.2897, 0.1318],
                         [0.0033, -0.0462, 0.5524],
                         [-0.2522, -0.3813, 0.2241],
                         [0.2485, -0.3813, 0.2224]], dtype=np.float64)


# --------------------------------------------------------------------------- network

def _conv1x1(cin: int, cout: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=bias)


class _Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), torchvision's key names."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, cout)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(_conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50Trunk(nn.Module):
    """ResNet-50 up to global average pooling (no ``fc``): ``(B,3,H,W) -> (B,2048,1,1)``."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 6, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            stride = 1 if index == 1 else 2
            stage = []
            for b in range(blocks):
                stage.append(_Bottleneck(cin, planes, stride if b == 0 else 1))
                cin = planes * _Bottleneck.expansion
            setattr(self, f"layer{index}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)


class ReconNet(nn.Module):
    """``net_recon`` of Deep3DFaceRecon: RGB in [0,1] ``(B,3,224,224)`` -> ``(B,257)`` coefficients."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50Trunk()
        self.final_layers = nn.ModuleList(
            [_conv1x1(self.backbone.out_channels, d, bias=True) for d in FINAL_DIMS])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)
        return torch.flatten(torch.cat([layer(feat) for layer in self.final_layers], dim=1), 1)


def _read_recon(path: Path) -> Mapping[str, torch.Tensor]:
    from talkingface.weights.seeded import torch_load

    state = torch_load(path)
    if isinstance(state, Mapping) and "net_recon" in state:
        return state["net_recon"]
    keys = list(state)[:5] if isinstance(state, Mapping) else type(state).__name__
    raise CheckpointError(f"{path}: no 'net_recon' entry (found {keys})",
                          hint="expected face3d_pretrain_epoch_20.pth of VideoReTalking; run "
                               "`python -m talkingface checkpoints verify`")


def load_recon(path: PathLike | None = None, *, weights: str = "official", seed: int = 0,
               device: str | torch.device = "cpu", root: PathLike | None = None) -> ReconNet:
    """The 3DMM regressor: official ``face3d_pretrain_epoch_20.pth['net_recon']`` (strict) or seeded-v1."""
    from talkingface.face import load_net

    return load_net(ReconNet(), name="face3d", path=path, weights=weights, seed=seed, device=device,
                    root=root, read=_read_recon)


def split_coeff(coeffs: np.ndarray | torch.Tensor) -> dict[str, Any]:
    """``(B,257)`` -> dict of the id/exp/tex/angle/gamma/trans parts (the reference's names)."""
    return {name: coeffs[:, part] for name, part in SPLITS.items()}


# --------------------------------------------------------------------------- 3D template

def lm3d_from_68(lm68_3d: np.ndarray) -> np.ndarray:
    """(68,3) 3D landmarks -> the 5 points in the order used for alignment."""
    return estimate_lm5(lm68_3d)


def load_lm3d(bfm_dir: PathLike | None = None, *, root: PathLike | None = None) -> np.ndarray:
    """The 5-point 3D mean-face template from ``BFM/similarity_Lm3D_all.mat`` -> ``(5,3)``."""
    from scipy.io import loadmat

    if bfm_dir is None:
        from talkingface.weights.manifest import checkpoint_path

        bfm_dir = checkpoint_path("bfm", root)
    path = Path(bfm_dir) / "similarity_Lm3D_all.mat"
    if not path.is_file():
        raise CheckpointError(f"{path} not found (3DMM alignment template)",
                              hint="run `python -m talkingface checkpoints download` (BFM.zip)")
    try:
        lm = np.asarray(loadmat(str(path))["lm"], np.float64)
    except Exception as exc:  # scipy raises several types for damaged files
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}",
                              hint="re-download BFM.zip with `python -m talkingface checkpoints download`") from None
    if lm.ndim != 2 or lm.shape[0] < 68 or lm.shape[1] != 3:
        raise CheckpointError(f"{path}: 'lm' has shape {lm.shape}, expected (68, 3)",
                              hint="re-download BFM.zip")
    return lm3d_from_68(lm)


def seeded_lm3d() -> np.ndarray:
    """A fixed plausible 5-point template for seeded runs without ``checkpoints/BFM`` (see ``_SEEDED_LM3D``)."""
    log.warning("3DMM alignment uses a built-in approximate 5-point template (BFM folder absent, seeded run)")
    return _SEEDED_LM3D.copy()


# --------------------------------------------------------------------------- alignment

def estimate_lm5(lm68: np.ndarray) -> np.ndarray:
    """68 (2D or 3D) points -> 5: left eye centre, right eye centre, nose tip, mouth corners."""
    lm = np.asarray(lm68, np.float64)
    i = _LM5_IDX
    return np.stack([lm[i[[1, 2]]].mean(0), lm[i[[3, 4]]].mean(0), lm[i[0]], lm[i[5]], lm[i[6]]], axis=0)


def pos(xp: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares weak perspective fit ``xp ~ s * R[:2] x + t`` (Deep3DFaceRecon's ``POS``).

    ``xp``: (2, N) image points, ``x``: (3, N) 3D points. Returns ``t`` (2,) and the
    scale ``s`` (mean norm of the two fitted projection rows).
    """
    xp = np.asarray(xp, np.float64)
    x = np.asarray(x, np.float64)
    n = xp.shape[1]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = x.T
    a[0::2, 3] = 1
    a[1::2, 4:7] = x.T
    a[1::2, 7] = 1
    b = xp.T.reshape(2 * n)
    k = np.linalg.lstsq(a, b, rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(s)


def _resize_n_crop(image: Image.Image, t: np.ndarray, s: float, target: float = TARGET_SIZE) -> Image.Image:
    w0, h0 = image.size
    w, h = int(np.float64(w0 * s)), int(np.float64(h0 * s))
    left = int(np.float64(w / 2 - target / 2 + float((t[0] - w0 / 2) * s)))
    up = int(np.float64(h / 2 - target / 2 + float((h0 / 2 - t[1]) * s)))
    size = int(target)
    resized = image.resize((w, h), resample=Image.BICUBIC)
    return resized.crop((left, up, left + size, up + size))


def align_for_recon(image_rgb: np.ndarray, lm68: np.ndarray, lm3d_std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Align an RGB image to the 224x224 input of :class:`ReconNet`.

    ``lm68`` are image landmarks (x right, y down) as the landmark extractors give
    them; like the reference's inference script they are flipped to y up
    (``H - 1 - y``) before the fit. All -1 ("no face") uses the template placed
    over the image, as the reference does. Returns ``trans_params``
    ``(W, H, s, tx, ty)`` float32 and the crop (224, 224, 3) uint8 RGB.
    """
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise InputMediaError(f"align_for_recon: expected an (H, W, 3) RGB image, got shape {image_rgb.shape}")
    h, w = image_rgb.shape[:2]
    lm = np.array(lm68, np.float64).reshape(-1, 2)
    if np.mean(lm) == -1:
        lm = (np.asarray(lm3d_std, np.float64)[:, :2] + 1) / 2.0
        lm = np.concatenate([lm[:, :1] * w, lm[:, 1:2] * h], 1)
    else:
        lm[:, -1] = h - 1 - lm[:, -1]
    lm5 = lm if lm.shape[0] == 5 else estimate_lm5(lm)
    t, s = pos(lm5.T, np.asarray(lm3d_std, np.float64).T)
    s = RESCALE_FACTOR / s
    crop = _resize_n_crop(Image.fromarray(np.ascontiguousarray(image_rgb, dtype=np.uint8)), t, s)
    trans_params = np.array([w, h, s, t[0], t[1]], np.float32)
    return trans_params, np.array(crop, np.uint8)


@torch.inference_mode()
def coefficients(net: nn.Module, crops256: np.ndarray, lm68: np.ndarray, lm3d_std: np.ndarray,
                 device: str | torch.device = "cpu", batch_size: int = 16) -> np.ndarray:
    """Per-frame 262-float semantic vectors ``(T,262)``: 257 coefficients + ``(W,H,s,tx,ty)``.

    ``crops256`` (T,H,W,3) RGB uint8 (256x256 in the pipeline), ``lm68`` (T,68,2)
    landmarks of those crops (y down; all -1 for a frame without a face).
    """
    crops256 = np.asarray(crops256)
    lm68 = np.asarray(lm68, np.float32)
    if crops256.ndim != 4 or len(crops256) != len(lm68):
        raise InputMediaError(f"coefficients: {crops256.shape} crops vs {lm68.shape} landmarks")
    out = np.zeros((len(crops256), SEMANTIC_DIM), np.float32)
    for start in range(0, len(crops256), batch_size):
        idx = range(start, min(start + batch_size, len(crops256)))
        aligned = [align_for_recon(crops256[i], lm68[i], lm3d_std) for i in idx]
        images = torch.from_numpy(np.stack([a[1] for a in aligned])).to(device)
        x = images.permute(0, 3, 1, 2).float() / 255.0
        out[start:start + len(idx), :COEFF_DIM] = net(x).float().cpu().numpy()
        out[start:start + len(idx), COEFF_DIM:] = np.stack([a[0] for a in aligned])
    return out


# --------------------------------------------------------------------------- expression templates

EXPRESSION_KEYS = {"neutral": "expression_center", "smile": "expression_mouth"}


def seeded_expression(kind: str, seed: int = 0) -> np.ndarray:
    """Deterministic stand-ins for ``expression.mat`` in seeded runs (N(0, 0.1^2), key ``expression:<kind>``).

    ``neutral`` and ``smile`` draw from different keys so they differ, as the real templates do.
    """
    from talkingface.weights.seeded import seeded_input

    return (seeded_input(f"expression:{kind}", (64,), seed) * 0.1).astype(np.float32)


def _read_expression_mat(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found (expression templates)",
                              hint="run `python -m talkingface checkpoints download`") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {exc}",
                              hint="re-download expression.mat") from None
    if key not in mat:
        raise CheckpointError(f"{path}: no {key!r} entry (found {sorted(k for k in mat if not k.startswith('__'))})",
                              hint="expected VideoReTalking's expression.mat")
    vec = np.asarray(mat[key], np.float32)[0].reshape(-1)
    if vec.size < 64:
        raise CheckpointError(f"{path}: {key!r} has {vec.size} values, expected at least 64")
    return vec[:64].copy()


def expression_template(kind: str | PathLike, *, mat_path: PathLike | None = None, net: nn.Module | None = None,
                        lm3d: np.ndarray | None = None,
                        landmarks: Callable[[np.ndarray], Any] | None = None,
                        weights: str = "official", device: str | torch.device = "cpu",
                        seed: int = 0) -> np.ndarray:
    """The 64 expression coefficients D-Net renders every reference frame with.

    ``"neutral"`` -> ``expression_center``, ``"smile"`` -> ``expression_mouth`` of
    ``expression.mat``; with ``weights="seeded"`` and no such file, fixed seeded
    vectors (:func:`seeded_expression`). Any other value is an image path: its
    landmarks (``landmarks(images (1,H,W,3)) -> (lm (1,68,2), missing)``) align it
    and ``net`` regresses its expression (the reference's image branch, which is
    broken upstream, done properly here).
    """
    kind_s = str(kind)
    if kind_s in EXPRESSION_KEYS:
        if mat_path is None:
            from talkingface.weights.manifest import find_checkpoint

            found = find_checkpoint("expression")
            if found is None:
                if weights == "seeded":
                    log.warning("expression %r: expression.mat absent; SEEDED template used", kind_s)
                    return seeded_expression(kind_s, seed)
                from talkingface.weights.manifest import checkpoint_path

                checkpoint_path("expression")  # raises with the download command
            mat_path = found
        return _read_expression_mat(Path(mat_path), EXPRESSION_KEYS[kind_s])
    path = Path(kind_s)
    if not path.is_file():
        raise ConfigError(f"expression {kind_s!r}: not 'neutral', 'smile' or an existing image file",
                          hint="use expression: neutral | smile | path/to/face.png")
    if net is None or lm3d is None or landmarks is None:
        raise ConfigError("expression from an image needs the 3DMM net, the 3D template and a landmark extractor")
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputMediaError(f"cannot read expression image {path}", hint="use a PNG or JPEG face image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    lm, missing = landmarks(rgb[None])
    if missing:
        log.warning("expression image %s: no face found; the template position is used", path)
    coeffs = coefficients(net, rgb[None], np.asarray(lm, np.float32)[:1], lm3d, device=device)
    return coeffs[0, SPLITS["exp"]].copy()
