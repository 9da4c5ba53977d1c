"""FID between generated and reference frames, as pytorch-fid computes it.

One FID over *all* generated frames against *all* reference frames (the
distributions, not clip pairs): face crops by default (``fid_crop: face``,
the same face-track crop as LSE, without its 100-frame minimum) or whole frames
(``fid_crop: frame``). Features are Inception pool3 (float64 statistics,
``np.cov`` with ``ddof=1``); the Fréchet distance keeps pytorch-fid's numerics:
``scipy.linalg.sqrtm`` of ``sigma1 @ sigma2``, retried with ``1e-6 * I`` added
to both covariances when the root is not finite, the imaginary part dropped
when its diagonal is within 1e-3 of zero and an error otherwise.
"""
from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import linalg

from talkingface.errors import TalkingFaceError
from talkingface.evaluation import lse_crop
from talkingface.evaluation.base import BaseMetric, EvalContext, SkipClip, as_item, resolve_weights, row
from talkingface.registry import register

FEATURE_DIM = 2048  # Inception pool3 width (inception.FEATURE_DIM; that module, and torch, load where used)

if TYPE_CHECKING:
    import torch

    from talkingface.evaluation.inception import FIDInceptionV3

log = logging.getLogger(__name__)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """scipy's sqrtm without its raw ``LinAlgWarning: Matrix is singular`` (a source path on the console):
    a singular product is what few frames give, and the FID warnings already say so in words."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        out = linalg.sqrtm(matrix)
    for warning in caught:
        if not issubclass(warning.category, linalg.LinAlgWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        else:
            log.debug("FID sqrtm: %s", warning.message)
    return out


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))`` with pytorch-fid's fallbacks."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, "
                         f"sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        log.warning("FID: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (sample, ddof=1) covariance of ``(N, D)`` features, float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def inception_features(net: FIDInceptionV3, images_rgb: np.ndarray | list[np.ndarray], batch_size: int = 32,
                       device: str | torch.device = "cpu") -> np.ndarray:
    """Pool3 features ``(N, 2048)`` float32 of uint8 RGB images (any sizes; each resized to 299)."""
    import torch

    with torch.inference_mode():
        feats = []
        images = list(images_rgb)
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if len({im.shape for im in batch}) == 1:
                x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).to(device).float() / 255.0
                feats.append(net(x).float().cpu().numpy())
            else:  # crops of different sizes: one at a time (resizing happens inside the net)
                for im in batch:
                    x = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].to(device).float() / 255.0
                    feats.append(net(x).float().cpu().numpy())
    return np.concatenate(feats) if feats else np.zeros((0, FEATURE_DIM), np.float32)


@register("metric", "fid")
class FIDMetric(BaseMetric):
    """FID over all frames of all clips (generated vs reference).

    Per-clip rows only count frames (FID of one short clip is not meaningful:
    fewer frames than 2048 dimensions gives a singular covariance). Config:
    ``fid_crop`` (face|frame), ``fid_batch_size`` (32), ``fid_frame_stride``
    (1: every frame), ``weights``, ``checkpoint_dir``, ``seed``.
    """

    name = "fid"
    columns = ("fid_frames",)
    labels = {"fid": "FID"}
    cache_keys = ("fid_crop", "lse_detector", "fid_frame_stride")
    settings = ("fid_batch_size",)
    networks = ("inception",)
    crop_key = "fid_crop"
    needs_reference = True

    def __init__(self, config: dict | None = None, *, context: EvalContext | None = None,
                 device: str | None = None, net: FIDInceptionV3 | None = None) -> None:
        self.context = context or EvalContext(config, device)
        cfg = self.context.config
        self.crop = cfg["fid_crop"]
        self.batch_size = int(cfg["fid_batch_size"])
        self.stride = max(1, int(cfg["fid_frame_stride"]))
        self.device = self.context.device
        if net is None:
            from talkingface.evaluation.inception import load_inception

            mode, path = resolve_weights(cfg, "inception")
            net = load_inception(path, weights=mode, seed=int(cfg.get("seed", 0)), device=self.device)
        self.net = net.to(self.device).eval()
        self.track_config = lse_crop.TrackConfig(min_track=0, min_face_size=0.0)
        self.reset()
        if self.crop == "face":
            self.context.detector()  # fail before any clip when the detector is unavailable

    @property
    def weights_info(self) -> dict[str, Any]:
        info = dict(getattr(self.net, "weights_info", {"weights": "unknown"}))
        info["crop"] = self.crop
        return info

    def reset(self) -> None:
        self._clips: list[tuple[str, np.ndarray, np.ndarray]] = []  # (name, generated, reference features)
        self._rows: list[dict[str, Any]] = []

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def _images(self, source: Any) -> list[np.ndarray] | np.ndarray:
        clip = self.context.video(source)
        frames = clip.frames
        if self.crop == "frame":
            return frames[::self.stride]
        report = self.context.memo(f"tracks:{self.track_config}", source, lambda: lse_crop.face_tracks(
            frames, config=self.track_config, detections=self.context.detections(source)))
        if report.reason:
            raise SkipClip(report.reason)
        crops: list[np.ndarray] = []
        for track in report.tracks:
            crops += list(lse_crop.track_crops(frames, track))
        return crops[::self.stride]

    def update(self, generated: Any, reference: Any = None, **kw: Any) -> dict[str, Any]:
        item = as_item(generated, reference, name=kw.get("name"))
        if item.reference is None:
            return self.skip(item.name, "no reference video: FID needs real frames to compare with")
        try:
            gen = self._images(item.generated)
            ref = self._images(item.reference)
        except (SkipClip, TalkingFaceError) as skip:
            return self.skip(item.name, getattr(skip, "message", None) or str(skip))
        self._clips.append((item.name, inception_features(self.net, gen, self.batch_size, self.device),
                            inception_features(self.net, ref, self.batch_size, self.device)))
        out = row(item.name, {"fid_frames": len(gen)}, None, fid_reference_frames=len(ref))
        self._rows.append(out)
        return out

    def skip(self, name: str, reason: str) -> dict[str, Any]:
        """Record a clip whose frames are left out of FID (also used by the evaluator on errors)."""
        out = row(name, {"fid_frames": None}, reason)
        self._rows.append(out)
        log.warning("%s: FID skipped: %s", name, reason)
        return out

    def clip_state(self, name: str) -> dict[str, Any]:
        """A clip's Inception features (what FID over all clips needs), ``{}`` when it was skipped."""
        for clip, gen, ref in reversed(self._clips):
            if clip == name:
                return {"generated": gen, "reference": ref}
        return {}

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        return self.join_features([{"generated": g, "reference": r} for _, g, r in self._clips])

    @staticmethod
    def join_features(states: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        gens = [s["generated"] for s in states if "generated" in s]
        refs = [s["reference"] for s in states if "reference" in s]
        empty = np.zeros((0, FEATURE_DIM), np.float32)
        return (np.concatenate(gens) if gens else empty), (np.concatenate(refs) if refs else empty)

    def compute(self) -> dict[str, float]:
        return self.summarise(self._rows, [{"generated": g, "reference": r} for _, g, r in self._clips])

    @classmethod
    def summarise(cls, rows: list[dict[str, Any]], states: list[dict[str, Any]] | None = None) -> dict[str, float]:
        """:meth:`compute` from per-clip states (features computed anywhere, in clip order): the
        Fréchet distance needs every clip's features together, so it is only ever taken here."""
        gen, ref = cls.join_features(list(states or []))
        out = {"fid": float("nan"), "fid_generated_frames": float(len(gen)), "fid_reference_frames": float(len(ref))}
        if len(gen) < 2 or len(ref) < 2:
            log.warning("FID: needs at least 2 frames on each side (have %d generated, %d reference)",
                        len(gen), len(ref))
            return out
        if min(len(gen), len(ref)) < FEATURE_DIM:
            log.warning("FID over %d/%d frames (< %d): covariances are rank-deficient and the value is biased; "
                        "compare FIDs only at equal frame counts", len(gen), len(ref), FEATURE_DIM)
        out["fid"] = float(frechet_distance(*feature_statistics(gen), *feature_statistics(ref)))
        return out

    @classmethod
    def aggregate(cls, computed: dict[str, float], config: dict[str, Any]) -> dict[str, Any]:
        """One distance over every clip's frames, with the frame counts it was taken over."""
        return {"fid": {"value": computed.get("fid"), "generated_frames": int(computed.get("fid_generated_frames", 0)),
                        "reference_frames": int(computed.get("fid_reference_frames", 0))}}

    @classmethod
    def report(cls, aggregate: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        fid = aggregate.get("fid")
        if not isinstance(fid, dict):
            return {}
        return {cls.labels["fid"]: {"mean": fid.get("value"), "std": None, "count": fid.get("generated_frames"),
                                    "note": f"{fid.get('generated_frames')} vs {fid.get('reference_frames')} frames"}}
