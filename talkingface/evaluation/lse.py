"""LSE-D / LSE-C: SyncNet audio-visual distance and confidence.

Scoring follows syncnet_python's ``SyncNetInstance.evaluate`` (as used by
Wav2Lip's ``evaluation/scores_LSE``):

* ``min_length = min(video frames, floor(audio samples / 640))`` and
  ``min_length - 5`` windows (the reference's count, one fewer than fit);
  window ``v`` is frames ``v..v+4`` and MFCC steps ``4v..4v+19``;
* per window and per offset ``k`` in ``-vshift..vshift`` the Euclidean distance
  (``pairwise_distance``, eps 1e-6) between the lip embedding and the audio
  embedding of window ``v + k``, zero vectors beyond the ends;
* ``mdist`` = mean over windows per offset; **LSE-D** = ``min(mdist)``,
  **LSE-C** = ``median(mdist) - min(mdist)``, **offset** = ``vshift - argmin``
  (positive: the audio leads the video by that many frames).

Videos are read at 25 fps (resampled if needed), audio at 16 kHz and scaled to
int16 as the reference's wav.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from talkingface.errors import TalkingFaceError
from talkingface.evaluation import lse_crop
from talkingface.evaluation.base import (BaseMetric, EvalContext, SkipClip, as_item, mean_std, resolve_weights,
                                         row)
from talkingface.registry import register

# torch and the SyncNet module are imported where they are used: the class facts
# (columns, checkpoints, cache keys) are read by the pre-flight, which runs before torch is imported.
if TYPE_CHECKING:
    import torch

    from talkingface.evaluation.syncnet import SyncNet

log = logging.getLogger(__name__)

PROTOCOLS = ("reference", "direct")
SILENCE_PEAK = 3  # int16 units (about -80 dBFS): below this the clip has no speech to sync with


@dataclass
class SyncResult:
    lse_d: float
    lse_c: float
    offset: int
    mdist: np.ndarray  # (2*vshift+1,) mean distance per offset, index 0 = offset +vshift
    num_windows: int
    dists: np.ndarray | None = field(default=None, repr=False)  # (windows, 2*vshift+1)

    def as_dict(self) -> dict[str, Any]:
        return {"lse_d": self.lse_d, "lse_c": self.lse_c, "lse_offset": self.offset, "windows": self.num_windows}


def num_windows(num_frames: int, num_samples: int) -> int:
    """Windows the reference scores: ``min(frames, samples // 640) - 5`` (may be <= 0)."""
    from talkingface.evaluation.syncnet import SAMPLES_PER_FRAME, WINDOW_FRAMES

    return min(num_frames, num_samples // SAMPLES_PER_FRAME) - WINDOW_FRAMES


def offset_distances(lip: torch.Tensor, aud: torch.Tensor, vshift: int = 15, chunk: int = 256) -> torch.Tensor:
    """``(windows, 2*vshift+1)`` distances of each lip window to the audio windows around it."""
    import torch
    import torch.nn.functional as F

    width = 2 * vshift + 1
    padded = F.pad(aud, (0, 0, vshift, vshift))
    rows = []
    for start in range(0, lip.shape[0], chunk):
        block = lip[start:start + chunk]
        n = block.shape[0]
        index = torch.arange(start, start + n)[:, None] + torch.arange(width)[None, :]
        candidates = padded[index.reshape(-1)]
        rows.append(F.pairwise_distance(block.repeat_interleave(width, dim=0), candidates).reshape(n, width))
    return torch.cat(rows)


def score_embeddings(lip: torch.Tensor | np.ndarray, aud: torch.Tensor | np.ndarray, vshift: int = 15) -> SyncResult:
    """LSE-D, LSE-C and offset from per-window embeddings (float32 as the reference)."""
    import torch

    lip = torch.as_tensor(lip, dtype=torch.float32).cpu()
    aud = torch.as_tensor(aud, dtype=torch.float32).cpu()
    if lip.shape != aud.shape or lip.ndim != 2 or lip.shape[0] < 1:
        raise ValueError(f"need matching (windows, dim) embeddings, got {tuple(lip.shape)} and {tuple(aud.shape)}")
    dists = offset_distances(lip, aud, vshift)
    mdist = dists.t().contiguous().mean(1)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval
    return SyncResult(float(minval), float(conf), int(vshift - int(minidx)), mdist.numpy(), lip.shape[0],
                      dists.numpy())


def embed_windows(net: SyncNet, crops_rgb: np.ndarray, mfcc: np.ndarray, windows: int, batch_size: int = 20,
                  device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Lip and audio embeddings of the first ``windows`` windows (CPU float32 tensors).

    ``crops_rgb``: ``(T, 224, 224, 3)`` uint8 RGB; turned into the reference's
    BGR 0-255 float input here.
    """
    import torch

    from talkingface.evaluation.syncnet import MFCC_PER_FRAME, WINDOW_FRAMES, WINDOW_MFCC

    with torch.inference_mode():
        video = torch.from_numpy(np.ascontiguousarray(crops_rgb[:windows + WINDOW_FRAMES - 1, :, :, ::-1]))
        video = video.permute(3, 0, 1, 2).float()  # (3, T, 224, 224) BGR
        audio = torch.from_numpy(mfcc.astype(np.float32))[None]  # (1, 13, n)
        lips, auds = [], []
        for start in range(0, windows, batch_size):
            idx = range(start, min(windows, start + batch_size))
            lip_in = torch.stack([video[:, v:v + WINDOW_FRAMES] for v in idx]).to(device)
            aud_in = torch.stack([audio[:, :, v * MFCC_PER_FRAME:v * MFCC_PER_FRAME + WINDOW_MFCC] for v in idx]).to(device)
            lips.append(net.forward_lip(lip_in).float().cpu())
            auds.append(net.forward_aud(aud_in).float().cpu())
        return torch.cat(lips), torch.cat(auds)


def sync_score(net: SyncNet, crops_rgb: np.ndarray, audio: np.ndarray, *, vshift: int = 15, batch_size: int = 20,
               device: str | torch.device = "cpu") -> SyncResult:
    """SyncNet scores of 224x224 crops with their audio (float [-1, 1] or int16, 16 kHz).

    Raises :class:`SkipClip` with the reason when the clip cannot be scored.
    """
    from talkingface.evaluation.syncnet import WINDOW_FRAMES, syncnet_mfcc, to_int16_scale

    samples = to_int16_scale(audio)
    if samples.size == 0 or int(np.abs(samples.astype(np.int32)).max()) <= SILENCE_PEAK:
        raise SkipClip("silent audio (peak below -80 dBFS): nothing to sync with")
    windows = num_windows(len(crops_rgb), len(samples))
    if windows < 1:
        raise SkipClip(f"too short for SyncNet: {len(crops_rgb)} frames and {len(samples) / 16000:.2f} s of audio "
                       f"give {max(windows, 0)} windows (needs at least {WINDOW_FRAMES + 1} frames of both)")
    mfcc = syncnet_mfcc(samples)
    lip, aud = embed_windows(net, crops_rgb, mfcc, windows, batch_size, device)
    return score_embeddings(lip, aud, vshift)


def plot_offset_curve(mdist: np.ndarray, vshift: int, path: str | Path, title: str = "") -> Path:
    """PNG of mean distance vs offset (the curve LSE-D/LSE-C summarise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from talkingface.atomic import atomic_path

    offsets = vshift - np.arange(len(mdist))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(offsets, mdist, marker=".")
    best = int(np.argmin(mdist))
    ax.axvline(offsets[best], color="red", lw=0.8)
    ax.set_xlabel("offset (frames, + = audio leads)")
    ax.set_ylabel("mean SyncNet distance")
    ax.set_title(title or f"LSE-D {mdist[best]:.3f}  LSE-C {np.median(mdist) - mdist[best]:.3f}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


#: the LSE settings that change a clip's LSE values (the key of its stored scores)
LSE_CACHE_KEYS = ("lse_protocol", "lse_crop", "lse_detector", "vshift", "lse_min_track", "lse_min_face_size",
                  "lse_scene_threshold", "lse_num_failed_det", "lse_crop_scale", "lse_facedet_scale")


def lse_protocol_info(config: dict[str, Any]) -> dict[str, Any]:
    """How the LSE numbers were made: protocol, crops, aggregation (printed with the table)."""
    from talkingface.evaluation.defaults import with_defaults

    config = with_defaults(config)
    info = {"protocol": config["lse_protocol"], "crop": config["lse_crop"], "aggregation": config["lse_aggregation"]}
    if config["lse_crop"] == "face":
        info["detector"] = config["lse_detector"]
    return info


def lse_note(agg: dict[str, Any]) -> str:
    """What an LSE mean is: protocol, crops and what it averages (e.g. ``reference, face tracks (s3fd), per clip``)."""
    crops = f"face tracks ({agg['detector']})" if agg.get("crop") == "face" else "whole frames"
    if agg.get("aggregation") == "per_track":
        over = f"mean of {agg.get('tracks', 0)} tracks"
    else:
        over = "mean of clips"
    return f"{agg['protocol']}, {crops}, {over}"


@register("metric", "lse")
class LSEMetric(BaseMetric):
    """LSE-D (lower is better) and LSE-C (higher is better) per clip; mean/std over clips.

    Config keys (defaults: config/evaluation.yaml): ``lse_protocol``
    (reference: the reference tools' ffmpeg chain | direct: lossless),
    ``lse_crop`` (face|frame), ``lse_detector`` (s3fd|dlib), ``vshift``,
    ``lse_batch_size``, ``lse_min_track``, ``lse_min_face_size``,
    ``lse_num_failed_det``, ``lse_crop_scale``, ``lse_facedet_scale``,
    ``lse_scene_threshold`` (null: no shot detection), ``weights``,
    ``checkpoint_dir``, ``seed``.
    With several face tracks in a clip, its values are the mean over tracks
    (each track is one line of the reference's output, kept in ``lse_tracks``);
    ``lse_aggregation: per_track`` averages over tracks instead of clips.
    """

    name = "lse"
    columns = ("lse_d", "lse_c", "lse_offset")
    labels = {"lse_d": "LSE-D (lower is better)", "lse_c": "LSE-C (higher is better)"}
    cache_keys = LSE_CACHE_KEYS
    settings = ("lse_aggregation", "lse_batch_size")
    networks = ("syncnet",)
    crop_key = "lse_crop"
    needs_audio = True

    def __init__(self, config: dict | None = None, *, context: EvalContext | None = None,
                 device: str | None = None, net: SyncNet | None = None) -> None:
        self.context = context or EvalContext(config, device)
        cfg = self.context.config
        from talkingface.errors import ConfigError

        self.crop = cfg["lse_crop"]
        if self.crop not in ("face", "frame"):
            raise ConfigError(f"lse_crop must be face or frame, not {self.crop!r}")
        self.protocol = cfg["lse_protocol"]
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"lse_protocol must be reference or direct, not {self.protocol!r}")
        if self.protocol == "reference":
            from talkingface.evaluation.reference_chain import ffmpeg_program

            ffmpeg_program()  # say it is missing before any clip
        self.vshift = int(cfg["vshift"])
        self.batch_size = int(cfg["lse_batch_size"])
        threshold = cfg["lse_scene_threshold"]
        self.track_config = lse_crop.TrackConfig(min_track=int(cfg["lse_min_track"]),
                                                 min_face_size=float(cfg["lse_min_face_size"]),
                                                 num_failed_det=int(cfg["lse_num_failed_det"]),
                                                 crop_scale=float(cfg["lse_crop_scale"]),
                                                 scene_threshold=None if threshold is None else float(threshold))
        self.device = self.context.device
        if net is None:
            from talkingface.evaluation.syncnet import load_syncnet

            mode, path = resolve_weights(cfg, "syncnet")
            net = load_syncnet(path, weights=mode, seed=int(cfg.get("seed", 0)), device=self.device)
        self.net = net.to(self.device).eval()
        self._rows: list[dict[str, Any]] = []
        self.curves: dict[str, np.ndarray] = {}
        if self.crop == "face":
            self.context.detector()  # a missing detector is a configuration error: say so before any clip

    @property
    def weights_info(self) -> dict[str, Any]:
        info = dict(getattr(self.net, "weights_info", {"weights": "unknown"}))
        info["crop"] = self.crop
        info["protocol"] = self.protocol
        if self.crop == "face":
            info["detector"] = self.context.config["lse_detector"]
        return info

    def reset(self) -> None:
        self._rows.clear()
        self.curves.clear()

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def _segments(self, item) -> list[tuple[np.ndarray, np.ndarray, dict]]:
        if self.protocol == "reference":
            return self._reference_segments(item)
        clip = self.context.video(item.generated)
        try:
            audio = self.context.audio(item.audio if item.audio is not None else item.generated)
        except Exception as exc:  # InputMediaError mostly: no sound track
            raise SkipClip(f"no usable audio: {getattr(exc, 'message', exc)}") from None
        if self.crop == "frame":
            return [(lse_crop.frame_crops(clip.frames), audio, {"start": 0, "end": clip.num_frames})]
        report = self.context.memo(f"tracks:{self.track_config}", item.generated, lambda: lse_crop.face_tracks(
            clip.frames, config=self.track_config, detections=self.context.detections(item.generated)))
        if report.reason:
            raise SkipClip(report.reason)
        from talkingface.evaluation.syncnet import SAMPLES_PER_FRAME

        segments = []
        for track in report.tracks:
            crops = lse_crop.track_crops(clip.frames, track, crop_scale=self.track_config.crop_scale)
            piece = audio[track.start * SAMPLES_PER_FRAME:track.end * SAMPLES_PER_FRAME]
            segments.append((crops, piece, {"start": track.start, "end": track.end}))
        return segments

    def _reference_segments(self, item) -> list[tuple[np.ndarray, np.ndarray, dict]]:
        """The reference tools' ffmpeg chain on the video file (its own sound track, as they score it)."""
        from talkingface.evaluation import reference_chain

        source = item.generated
        if hasattr(source, "frames") or not isinstance(source, (str, Path)):
            raise SkipClip("lse_protocol=reference scores video files (the reference tools re-encode them); "
                           "decoded frames need lse_protocol=direct")
        if not Path(source).is_file():
            raise SkipClip(f"{source} does not exist")
        if self.crop == "frame":
            return reference_chain.frame_segments(source)
        return reference_chain.face_segments(source, self.context.detector(), self.track_config)

    def update(self, generated: Any, reference: Any = None, **kw: Any) -> dict[str, Any]:
        item = as_item(generated, reference, audio=kw.get("audio"), name=kw.get("name"))
        try:
            results = []
            for crops, audio, span in self._segments(item):
                results.append((sync_score(self.net, crops, audio, vshift=self.vshift, batch_size=self.batch_size,
                                           device=self.device), span))
        except (SkipClip, TalkingFaceError) as skip:
            return self.skip(item.name, getattr(skip, "message", None) or str(skip))
        main = max(results, key=lambda r: r[0].num_windows)[0]
        self.curves[item.name] = main.mdist
        values = {"lse_d": float(np.mean([r.lse_d for r, _ in results])),
                  "lse_c": float(np.mean([r.lse_c for r, _ in results])),
                  "lse_offset": main.offset}
        extra = {"lse_windows": sum(r.num_windows for r, _ in results),
                 "lse_tracks": [{**span, **r.as_dict()} for r, span in results]}
        out = row(item.name, values, None, **extra)
        self._rows.append(out)
        return out

    def skip(self, name: str, reason: str) -> dict[str, Any]:
        """Record a clip this metric could not score (also used by the evaluator on errors)."""
        out = row(name, {k: None for k in self.columns}, reason)
        self._rows.append(out)
        log.warning("%s: LSE skipped: %s", name, reason)
        return out

    def clip_state(self, name: str) -> dict[str, Any]:
        """What a clip leaves beyond its row: the offset curve (for the sync plot)."""
        curve = self.curves.get(name)
        return {} if curve is None else {"curve": [float(v) for v in curve]}

    @classmethod
    def summarise(cls, rows: list[dict[str, Any]], states: list[dict[str, Any]] | None = None) -> dict[str, float]:
        """:meth:`compute` from per-clip rows (scored anywhere, e.g. on other workers)."""
        scored = [r for r in rows if not r["skipped"]]
        d_mean, d_std = mean_std([r["lse_d"] for r in scored])
        c_mean, c_std = mean_std([r["lse_c"] for r in scored])
        # per_track: every face track counts once (a clip without a track list is one track)
        tracks = [t for r in scored for t in (r.get("lse_tracks") or [{"lse_d": r["lse_d"], "lse_c": r["lse_c"]}])]
        td_mean, td_std = mean_std([t["lse_d"] for t in tracks])
        tc_mean, tc_std = mean_std([t["lse_c"] for t in tracks])
        return {"lse_d": d_mean, "lse_d_std": d_std, "lse_c": c_mean, "lse_c_std": c_std,
                "lse_n": float(len(scored)), "lse_skipped": float(len(rows) - len(scored)),
                "lse_track_d": td_mean, "lse_track_d_std": td_std, "lse_track_c": tc_mean,
                "lse_track_c_std": tc_std, "lse_track_n": float(len(tracks))}

    def compute(self) -> dict[str, float]:
        return self.summarise(self._rows)

    @classmethod
    def aggregate(cls, computed: dict[str, float], config: dict[str, Any]) -> dict[str, Any]:
        """Mean over clips (``per_clip``) or over face tracks (``per_track``), saying which and how made."""
        out = super().aggregate(computed, config)
        info = lse_protocol_info(config)
        per_track = info["aggregation"] == "per_track"
        for key, track_key in (("lse_d", "lse_track_d"), ("lse_c", "lse_track_c")):
            if key not in out:
                continue
            if per_track:
                out[key].update(mean=computed.get(track_key), std=computed.get(f"{track_key}_std"),
                                n=int(computed.get("lse_track_n", 0)))
            out[key].update(clips=int(computed.get("lse_n", 0)), tracks=int(computed.get("lse_track_n", 0)), **info)
        return out

    @classmethod
    def report(cls, aggregate: dict[str, Any], config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The table rows, each note starting with how the mean was made (protocol, crops, over what)."""
        out = super().report(aggregate, config)
        for key, label in cls.labels.items():
            agg = aggregate.get(key)
            if label in out and isinstance(agg, dict) and agg.get("protocol"):
                out[label]["note"] = "; ".join(filter(None, (lse_note(agg), out[label]["note"])))
        return out


__all__ = ["LSEMetric", "SyncResult", "num_windows", "offset_distances", "score_embeddings", "embed_windows",
           "sync_score", "plot_offset_curve"]
