"""PSNR and SSIM against ground truth (only in the paired setting).

In the unpaired setting the reference video is not ground truth for the
generated frames (other audio drove them), so both metrics report "not
applicable" (``None`` with a reason) instead of numbers.

* PSNR: ``10 log10(255^2 / MSE)`` per frame in float64 (no uint8 wrap-around),
  averaged over frames; an identical frame gives ``inf``.
* SSIM: Wang et al. 2004 — Gaussian weights (sigma 1.5, truncated at 3.5 sigma:
  an 11x11 window), population covariances, K1 0.01, K2 0.03, data range 255,
  mirror ('reflect') borders, the 5-pixel border of the SSIM map excluded, mean
  over colour channels: scikit-image's ``structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)``. Averaged over frames.

``fidelity_crop: face`` compares the face region: boxes from the reference
video's face track (the LSE track, clipped to the frame, no padding or
resizing) cut from both videos at the same place; ``frame`` compares whole frames.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import ndimage

from talkingface.errors import TalkingFaceError
from talkingface.evaluation import lse_crop
from talkingface.evaluation.base import BaseMetric, EvalContext, SkipClip, as_item, row
from talkingface.registry import register

log = logging.getLogger(__name__)

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB of one image pair (float64)."""
    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch {reference.shape} vs {test.shape}")
    diff = reference.astype(np.float64) - test.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range * data_range / mse))


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0, sigma: float = SSIM_SIGMA) -> float:
    """Mean SSIM of one image pair; ``(H, W)`` grey or ``(H, W, C)`` colour (channel mean)."""
    if reference.shape != test.shape:
        raise ValueError(f"shape mismatch {reference.shape} vs {test.shape}")
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    if min(reference.shape[:2]) < 2 * radius + 1:
        raise ValueError(f"images of {reference.shape[:2]} are smaller than the {2 * radius + 1}px SSIM window")
    x = reference.astype(np.float64)
    y = test.astype(np.float64)
    sigmas = (sigma, sigma) + (0.0,) * (x.ndim - 2)  # no blur across channels

    def blur(image: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(image, sigmas, mode="reflect", truncate=SSIM_TRUNCATE)

    ux, uy = blur(x), blur(y)
    vx = blur(x * x) - ux * ux
    vy = blur(y * y) - uy * uy
    vxy = blur(x * y) - ux * uy
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    smap = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    inner = smap[radius:-radius, radius:-radius]
    if inner.ndim == 2:
        return float(inner.mean())
    return float(inner.reshape(-1, inner.shape[-1]).mean(axis=0).mean())


class _FidelityMetric(BaseMetric):
    """Frame-by-frame comparison with ground truth: only the paired setting has any."""

    name = ""
    fn = staticmethod(psnr)
    cache_keys = ("fidelity_crop", "lse_detector", "pairing")
    crop_key = "fidelity_crop"
    needs_reference = True

    @classmethod
    def applies(cls, config: Any) -> bool:
        return config.get("pairing") == "paired"

    @classmethod
    def not_applicable_note(cls) -> str:
        return "not applicable (unpaired: no ground truth)"

    def __init__(self, config: dict | None = None, *, context: EvalContext | None = None,
                 device: str | None = None) -> None:
        self.context = context or EvalContext(config, device)
        self.crop = self.context.config["fidelity_crop"]
        self.paired_setting = self.context.config.get("pairing") == "paired"
        self.track_config = lse_crop.TrackConfig(min_track=0, min_face_size=0.0)
        self._rows: list[dict[str, Any]] = []
        if self.crop == "face" and self.paired_setting:
            self.context.detector()  # fail before any clip when the detector is unavailable

    @property
    def weights_info(self) -> dict[str, Any]:
        return {"weights": "none", "crop": self.crop}

    def reset(self) -> None:
        self._rows.clear()

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def _pairs(self, item) -> tuple[list[np.ndarray], list[np.ndarray]]:
        gen = self.context.video(item.generated).frames
        ref = self.context.video(item.reference).frames
        if len(gen) != len(ref):
            raise SkipClip(f"frame-count mismatch: generated {len(gen)} vs reference {len(ref)} frames at "
                           f"{self.context.fps:g} fps (paired metrics compare frame by frame)")
        if gen.shape[1:] != ref.shape[1:]:
            raise SkipClip(f"frame-size mismatch: generated {gen.shape[2]}x{gen.shape[1]} vs reference "
                           f"{ref.shape[2]}x{ref.shape[1]}")
        if self.crop == "frame":
            return list(gen), list(ref)
        report = self.context.memo(f"tracks:{self.track_config}", item.reference, lambda: lse_crop.face_tracks(
            ref, config=self.track_config, detections=self.context.detections(item.reference)))
        if report.reason:
            raise SkipClip(f"reference: {report.reason}")
        track = max(report.tracks, key=len)
        gens, refs = [], []
        for i, f in enumerate(track.frames):
            args = (track.half_size[i], track.centre_x[i], track.centre_y[i], 0.4, None)
            refs.append(lse_crop.crop_window(ref[f], *args))
            gens.append(lse_crop.crop_window(gen[f], *args))
        return gens, refs

    def update(self, generated: Any, reference: Any = None, **kw: Any) -> dict[str, Any]:
        item = as_item(generated, reference, name=kw.get("name"), paired=kw.get("paired"))
        reason = None
        if item.reference is None:
            reason = "not applicable: no ground-truth video"
        elif not (item.paired or self.paired_setting):
            reason = "not applicable: unpaired setting (the reference is not ground truth for these frames)"
        if reason is None:
            try:
                gens, refs = self._pairs(item)
                scores = [self.fn(r, g) for g, r in zip(gens, refs)
                          if min(r.shape[:2]) >= 11 or self.fn is psnr]
                if not scores:
                    raise SkipClip("face crops smaller than the 11 px SSIM window")
                out = row(item.name, {self.name: float(np.mean(scores))}, None, **{f"{self.name}_frames": len(scores)})
                self._rows.append(out)
                return out
            except (SkipClip, TalkingFaceError) as skip:
                reason = getattr(skip, "message", None) or str(skip)
        return self.skip(item.name, reason)

    def skip(self, name: str, reason: str) -> dict[str, Any]:
        """Record a clip without a value (also used by the evaluator on errors)."""
        out = row(name, {self.name: None}, reason)
        self._rows.append(out)
        if not reason.startswith("not applicable"):
            log.warning("%s: %s skipped: %s", name, self.name.upper(), reason)
        return out

    def clip_state(self, name: str) -> dict[str, Any]:
        return {}


@register("metric", "psnr")
class PSNRMetric(_FidelityMetric):
    """Mean per-frame PSNR (dB) against ground truth; config ``fidelity_crop``, ``pairing``."""

    name = "psnr"
    columns = ("psnr",)
    labels = {"psnr": "PSNR (dB)"}
    fn = staticmethod(psnr)


@register("metric", "ssim")
class SSIMMetric(_FidelityMetric):
    """Mean per-frame SSIM against ground truth; config ``fidelity_crop``, ``pairing``."""

    name = "ssim"
    columns = ("ssim",)
    labels = {"ssim": "SSIM"}
    fn = staticmethod(ssim)
