"""VideoReTalking inference as a pipeline of named stages (diffusers-style).

The stage order, constants and defaults are the official inference.py's
(OpenTalker/video-retalking): the input frame rate is kept and the mel windows
follow it, the output has one frame per mel window, FAN landmarks, S3FD boxes,
RetinaFace-aligned GPEN and GFPGAN, the best-scoring face of every detector, a
compose that re-detects and re-parses the face, whole-frame blends. What
differs by default changes no frame the official code produces:

* every video-only stage (crop, landmarks, 3DMM, D-Net, reference enhancement,
  face boxes, references) is cached per clip, keyed by the file's content and
  the options that shape it, so re-dubbing a clip with new audio skips them;
* frames without a face hold/interpolate their neighbours' boxes where the
  official code stops with an error; a clip with no face at all is a clear error;
* noise (E-Net, GFPGAN) is drawn fresh on every call as there, but from a
  generator seeded with ``seed`` (``noise: fresh`` is the official's unseeded draw);
* frames are decoded on demand and encoded as they are composed (memory).

Options that do change frames (``face_select``, ``compose: box``,
``landmarks: dlib``, ``resample_fps``, ...) are listed with the official
behaviour in the README table; ``compat: reference`` sets them all to the official.

Images are RGB uint8 throughout; L-Net/E-Net get BGR as in their training.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from talkingface.errors import ConfigError
from talkingface.models.video_retalking import semantic
from talkingface.face.croper import ffhq_quad
from talkingface.models.video_retalking.align import crop_by_quad, paste_by_quad
from talkingface.models.video_retalking.cache import ClipScratch, StageCache, file_digest
from talkingface.models.video_retalking.options import PipelineOptions  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

IMG_SIZE = 384  # E-Net input size
MOUTH_CLASSES = (10, 11, 12)
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 10, 11, 12)

#: options that shape the decoded clip (part of every cached stage's key)
CLIP_OPTIONS = ("fps", "resample_fps", "crop", "max_seconds", "static", "face_select")
_LANDMARKS = ("landmarks", "landmark_gaps", "weights_id", "seed", "seeded_stand_ins")
_REFERENCE = _LANDMARKS + ("expression", "one_shot", "batch_size", "enhancer")
#: the options each cached stage depends on, its upstream stages' included
STAGE_OPTIONS: dict[str, tuple[str, ...]] = {
    "crop": (),
    "landmarks": _LANDMARKS,
    "coeffs": _LANDMARKS,
    "stabilize": _LANDMARKS + ("expression", "one_shot", "batch_size"),
    "enhance_reference": _REFERENCE,
    "face_boxes": ("pads", "nosmooth", "face_detector", "weights_id", "seed", "seeded_stand_ins"),
    "references": _REFERENCE + ("pads", "nosmooth", "face_detector"),
}
#: stages the official code runs only on the frames the output shows (``full_frames[:len(mel_chunks)]``)
SHOWN_FRAME_STAGES = ("enhance_reference", "face_boxes", "references")


@dataclass
class ClipState:
    """What the stages hand each other for one clip."""
    frames: Any  # (T, H, W, 3) full frames, RGB, after `crop`: DecodedFrames (on demand) or an array
    fps: float
    cache: StageCache
    scratch: ClipScratch

    def head(self, count: int) -> ClipState:
        """The first ``count`` frames (same cache and scratch)."""
        if count >= len(self.frames):
            return self
        frames = self.frames.head(count) if hasattr(self.frames, "head") else self.frames[:count]
        return ClipState(frames, self.fps, self.cache, self.scratch)


class VideoReTalkingPipeline:
    """``pipeline(face=..., audio=..., outfile=...)`` -> the lip-synced mp4.

    Built once from named components (:class:`~.parts.Parts`: ``crop``,
    ``landmarks``, ``dnet``, ``enet``, ``enhance_face``, ...), each a callable
    with a narrow contract; :attr:`components` names them and :meth:`swap`
    gives a pipeline with some replaced. With a ``loader`` instead of parts,
    the networks load when the first stage past the face crop needs them (the
    crop itself, dlib only, is ``crop``).
    """

    stage_names = ("read", "crop", "landmarks", "coeffs", "expression", "stabilize", "enhance_reference",
                   "face_boxes", "references", "audio", "lipsync", "compose", "encode")

    def __init__(self, parts: Any, options: PipelineOptions, *, loader: Any = None, crop: Any = None) -> None:
        if parts is None and loader is None:
            raise ValueError("a pipeline needs its parts or a loader that builds them")
        self._parts = parts
        self._loader = loader
        self._crop = crop
        self.options = options
        self.timings: dict[str, float] = {}
        self.last_clip_frames = 0
        #: frames the last call wrote (one per mel window: fewer than the clip's for short audio)
        self.last_output_frames = 0

    @classmethod
    def from_config(cls, config: Any, weights: Any, *, networks_on_demand: bool = False) -> VideoReTalkingPipeline:
        """Every component for this config; ``networks_on_demand``: only the face crop now, the rest when needed."""
        from functools import partial

        from talkingface.models.video_retalking.parts import build_parts

        options = PipelineOptions.from_config(config, weights)
        if networks_on_demand:
            from talkingface.models.video_retalking.face_parts import make_croper

            return cls(None, options, loader=partial(build_parts, config, weights, options),
                       crop=make_croper(options).crop)  # dlib's predictor from the configured checkpoint_dir
        return cls(build_parts(config, weights, options), options)

    @property
    def parts(self) -> Any:
        """The components, loaded on first use when the pipeline was built with a loader."""
        if self._parts is None:
            start = time.perf_counter()
            self._parts = self._loader()
            log.info("networks loaded in %.1fs", time.perf_counter() - start)
        return self._parts

    @parts.setter
    def parts(self, parts: Any) -> None:
        self._parts = parts

    @property
    def networks_loaded(self) -> bool:
        return self._parts is not None

    @property
    def components(self) -> dict[str, Any]:
        """The named components (loads them when not loaded yet)."""
        from dataclasses import fields

        return {f.name: getattr(self.parts, f.name) for f in fields(self.parts)}

    def swap(self, **components: Any) -> VideoReTalkingPipeline:
        """A pipeline with the named components replaced (the others, and the options, shared)."""
        from dataclasses import replace

        unknown = sorted(set(components) - set(self.components))
        if unknown:
            raise ValueError(f"unknown component(s) {unknown}; known: {', '.join(self.components)}")
        return type(self)(replace(self.parts, **components), self.options)

    def crop_part(self) -> Any:
        """The face-crop component: the loaded parts' own, or the one built before the networks."""
        return self._crop if self._parts is None and self._crop is not None else self.parts.crop

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        log.debug("stage %s: %.2fs", name, self.timings[name])

    def _cached(self, state: ClipState, name: str, compute) -> dict[str, np.ndarray]:
        options = {k: getattr(self.options, k) for k in STAGE_OPTIONS[name]}
        if name in SHOWN_FRAME_STAGES:  # they run on the frames the output shows
            options["frames"] = len(state.frames)
        if "expression" in options:
            options["expression_file"] = _file_key(self.options.expression)
        hit = state.cache.load(name, options)
        if hit is not None:
            return hit
        with self._stage(name):
            out = compute()
        state.cache.save(name, options, out, state.scratch)
        return out

    def open_cache(self, face: Path) -> StageCache:
        """The clip's stage cache (keyed by its content and the clip options); emptied on ``re_preprocess``."""
        key = {"video": file_digest(face), **{k: getattr(self.options, k) for k in CLIP_OPTIONS}}
        cache = StageCache(self.options.cache_dir, key)
        if self.options.re_preprocess:
            cache.clear()
        return cache

    # ------------------------------------------------------------------ stages
    def read(self, face: Path) -> tuple[np.ndarray, float]:
        """The clip's frames with ``crop`` applied, decoded on demand (:class:`DecodedFrames`), and their rate.

        The input rate is kept (the official); ``resample_fps`` resamples to ``fps``
        first. A still image is one frame at ``fps`` (the official ``--fps``).

        Stages read the clip front to back; nothing holds every frame, in memory
        or on disk, so a long high-resolution clip costs what a few frames cost.
        """
        from talkingface.media import read_video
        from talkingface.media.video import is_image

        opts = self.options
        y1, y2, x1, x2 = opts.crop

        def crop(frame: np.ndarray) -> np.ndarray:
            return frame[y1:frame.shape[0] if y2 == -1 else y2, x1:frame.shape[1] if x2 == -1 else x2]

        clip = read_video(face, opts.fps if opts.resample_fps or is_image(face) else None, lazy=True,
                          transform=crop)
        frames, fps = clip.frames, float(clip.fps)
        if min(frames.shape[1:3]) < 1:
            raise ConfigError(f"crop={list(opts.crop)} leaves nothing of the {face.name} frames",
                              hint="give --crop=top,bottom,left,right inside the frame (-1: edge)")
        count = len(frames)
        if opts.max_seconds:
            count = min(count, max(1, int(round(opts.max_seconds * fps))))
        if opts.static or is_image(face):
            count = 1
        if count < len(frames):
            frames = frames.head(count) if hasattr(frames, "head") else frames[:count]
        return frames, fps

    def crop_stage(self, state: ClipState) -> dict[str, np.ndarray]:
        def compute() -> dict[str, np.ndarray]:
            out = state.scratch.empty("crops256", (len(state.frames), 256, 256, 3))
            crops, box, quad = self.crop_part()(state.frames, out)
            return {"crops256": crops, "box": np.asarray(box, np.int64), "quad": np.asarray(quad, np.float64)}
        return self._cached(state, "crop", compute)

    def landmarks_stage(self, state: ClipState, crops256: np.ndarray) -> np.ndarray:
        def compute() -> dict[str, np.ndarray]:
            lm, missing = self.parts.landmarks(crops256)
            if missing:
                log.warning("landmarks: no face in %d of %d cropped frame(s); neighbours' landmarks reused",
                            len(missing), len(crops256))
            return {"lm": np.asarray(lm, np.float32)}
        return self._cached(state, "landmarks", compute)["lm"]

    def coeffs_stage(self, state: ClipState, crops256: np.ndarray, lm: np.ndarray) -> np.ndarray:
        return self._cached(state, "coeffs", lambda: {"semantic": self.parts.coefficients(crops256, lm)})["semantic"]

    def expression_stage(self) -> np.ndarray:
        with self._stage("expression"):
            return np.asarray(self.parts.expression(self.options.expression), np.float32).reshape(-1)

    def stabilize_stage(self, state: ClipState, crops256: np.ndarray, coeffs: np.ndarray,
                        expression: np.ndarray) -> np.ndarray:
        """D-Net: every frame re-rendered with the template expression (the 'stabilised' reference)."""
        def compute() -> dict[str, np.ndarray]:
            out = state.scratch.empty("stabilized", crops256.shape)
            batch = self.options.batch_size
            for start in tqdm(range(0, len(crops256), batch), desc="D-Net", leave=False, disable=len(crops256) < 8):
                idx = list(range(start, min(start + batch, len(crops256))))
                source = crops256[[0] * len(idx)] if self.options.one_shot else crops256[idx]
                src = torch.from_numpy(source).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
                drive = semantic.driving_batch(coeffs, idx, expression, self.options.one_shot)
                fake = self.parts.dnet(src, drive)
                out[idx] = ((fake.clamp(-1, 1) + 1) / 2 * 255).permute(0, 2, 3, 1).byte().cpu().numpy()
            return {"stabilized": out}
        return self._cached(state, "stabilize", compute)["stabilized"]

    def enhance_reference_stage(self, state: ClipState, stabilized: np.ndarray) -> np.ndarray:
        def compute() -> dict[str, np.ndarray]:
            out = state.scratch.empty("enhanced", stabilized.shape)
            if self.parts.enhance_faces is not None:  # accel hook: GPEN/ParseNet batched (GPU path)
                step = self.options.batch_size
                for start in tqdm(range(0, len(stabilized), step), desc="GPEN reference", leave=False,
                                  disable=len(stabilized) < 8 * step):
                    images = [np.asarray(x) for x in stabilized[start:start + step]]
                    out[start:start + len(images)] = np.stack(self.parts.enhance_faces(images))
                return {"enhanced": out}
            for i, image in enumerate(tqdm(stabilized, desc="GPEN reference", leave=False,
                                           disable=len(stabilized) < 8)):
                out[i] = self.parts.enhance_face(np.asarray(image))
            return {"enhanced": out}
        return self._cached(state, "enhance_reference", compute)["enhanced"]

    def face_boxes_stage(self, state: ClipState, anchor: np.ndarray | None = None) -> np.ndarray:
        def compute() -> dict[str, np.ndarray]:
            boxes, missing = self.parts.face_boxes(state.frames, self.options.pads, self.options.nosmooth,
                                                   anchor=anchor)  # the face the crop stage chose
            if missing:
                log.warning("face boxes: no face in frame(s) %s; boxes held/interpolated from neighbours",
                            _ranges(missing))
            return {"boxes": np.asarray(boxes, np.int64)}
        return self._cached(state, "face_boxes", compute)["boxes"]

    def references_stage(self, state: ClipState, enhanced: np.ndarray, crop_lm: np.ndarray, box: np.ndarray,
                         quad: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stabilised faces pasted into the original frames, cut at the face boxes, 384x384.

        The paste-back quad comes from landmarks of the enhanced face; where none
        are found there (a failed D-Net frame, or seeded weights), the input
        crop's landmarks are used: D-Net keeps the head pose, so they match.
        """
        def compute() -> dict[str, np.ndarray]:
            # the official hands GPEN's BGR output to face-alignment, which expects RGB: FAN sees BGR here
            seen = _ChannelSwapped(enhanced) if self.options.landmarks == "fan" else enhanced
            lms, missing = self.parts.landmarks(seen)
            if missing:
                log.warning("references: no face in %d of %d stabilised frame(s) (%s); the input crop's "
                            "landmarks used there", len(missing), len(enhanced), _ranges(missing))
                lms = np.array(lms, np.float32)
                lms[missing] = crop_lm[missing]
            lms = np.asarray(lms, np.float32)
            unusable = [i for i in range(len(lms)) if np.mean(lms[i]) == -1]
            if unusable:  # no face in the crop either (the official code cannot go on there)
                log.warning("references: no landmarks at all in frame(s) %s; the input face box kept as the "
                            "reference", _ranges(unusable))
            oy1, oy2, ox1, ox2 = _crop_region(box, quad, state.frames.shape[1:3])
            refs = state.scratch.empty("refs", (len(enhanced), IMG_SIZE, IMG_SIZE, 3))
            for i, (face, lm) in enumerate(zip(enhanced, lms)):
                frame = state.frames[i]
                if i in unusable:
                    y1, y2, x1, x2 = boxes[i]
                    refs[i] = cv2.resize(np.asarray(frame)[y1:y2, x1:x2], (IMG_SIZE, IMG_SIZE))
                    continue
                q = ffhq_quad(lm)
                aligned = crop_by_quad(face, q, 256)
                region = cv2.resize(frame[oy1:oy2, ox1:ox2], (256, 256))
                pasted = paste_by_quad(aligned, q, region)
                full = frame.copy()
                full[oy1:oy2, ox1:ox2] = cv2.resize(pasted, (ox2 - ox1, oy2 - oy1))
                y1, y2, x1, x2 = boxes[i]
                refs[i] = cv2.resize(full[y1:y2, x1:x2], (IMG_SIZE, IMG_SIZE))
            return {"refs": refs}
        return self._cached(state, "references", compute)["refs"]

    def audio_stage(self, audio: Path, fps: float) -> tuple[np.ndarray, np.ndarray]:
        """Mel windows of the audio at the clip's frame rate: one output frame per window (the official loop).

        Audio too short for one 16-frame mel window (under ~0.19 s) is padded with
        silence to one window; the official code fails there.
        """
        from talkingface.media import load_audio
        from talkingface.media.mel import MEL_STEP, mel_chunks, melspectrogram

        def mel_of(samples: np.ndarray) -> np.ndarray:
            mel = melspectrogram(samples)
            return mel.cpu().numpy() if hasattr(mel, "cpu") else np.asarray(mel)

        with self._stage("audio"):
            wav = load_audio(audio, self.options.sample_rate)
            mel = mel_of(wav)
            if mel.shape[1] < MEL_STEP:
                hop = 200
                log.warning("%s: %.3f s of audio is shorter than one mel window; padded with silence",
                            Path(audio).name, len(wav) / self.options.sample_rate)
                mel = mel_of(np.pad(wav, (0, max(0, (MEL_STEP - 1) * hop - len(wav)))))
            chunks = mel_chunks(mel, None, fps)
            chunks = chunks.cpu().numpy() if hasattr(chunks, "cpu") else np.asarray(chunks)
        return wav, chunks

    def lipsync_stage(self, state: ClipState, chunks: np.ndarray, boxes: np.ndarray, refs: np.ndarray,
                      noise: torch.Generator | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
        """E-Net over batches of frames: yields (frame indices, 384x384 RGB predictions).

        Noise: ``seeded``, E-Net's own generator from ``seed``; ``fresh``, ``noise`` (the call's generator,
        shared with GFPGAN), or torch's global generator when none is given.
        """
        opts = self.options
        frames = state.frames
        n = len(frames)
        generator = torch.Generator(device="cpu").manual_seed(opts.seed) if opts.noise == "seeded" else noise
        batch = opts.batch_size
        for start in range(0, len(chunks), batch):
            steps = list(range(start, min(start + batch, len(chunks))))
            idx = [0 if opts.static else _frame_for_step(i, n) for i in steps]
            faces = np.stack([cv2.resize(frames[j][boxes[j][0]:boxes[j][1], boxes[j][2]:boxes[j][3]],
                                         (IMG_SIZE, IMG_SIZE)) for j in idx])
            face_bgr = faces[..., ::-1].astype(np.float32) / 255.0
            ref_bgr = refs[idx][..., ::-1].astype(np.float32) / 255.0
            masked = face_bgr.copy()
            masked[:, IMG_SIZE // 2:] = 0
            img = torch.from_numpy(np.concatenate([masked, ref_bgr], axis=3)).permute(0, 3, 1, 2)
            mel = torch.from_numpy(chunks[steps][:, None].astype(np.float32))
            with self._stage("lipsync"):
                pred = self.parts.enet(mel, img, generator)
                pred = pred.clamp(0, 1)
                if opts.without_rl1:
                    original = torch.from_numpy(np.ascontiguousarray(face_bgr)).permute(0, 3, 1, 2)
                    hole = (img[:, :3] == 0).float()
                    pred = pred * hole + original * (1 - hole)
            pred_rgb = (pred.permute(0, 2, 3, 1).cpu().numpy()[..., ::-1] * 255.0).astype(np.uint8)
            yield idx, pred_rgb

    def compose_frame(self, frame: np.ndarray, pred: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Paste the prediction, restore, keep only the mouth from it, blend the face into the frame.

        ``compose: official``: the mouth mask is ParseNet's classes 10-12 of the
        restored box, resized and stored into a uint8 array as the official code
        does (so only pixels fully inside the mouth count); whole frames are
        blended at 512 px; then the face is re-detected and re-parsed for the
        last blend. ``compose: box``: one parsing pass gives both masks and both
        blends stay inside a padded box around the face.
        """
        y1, y2, x1, x2 = [int(v) for v in box]
        pasted = frame.copy()
        pasted[y1:y2, x1:x2] = cv2.resize(pred, (x2 - x1, y2 - y1))
        restored = self.parts.restore(pasted, (y1, y2, x1, x2))
        labels = self.parts.parse_labels(restored[y1:y2, x1:x2])
        size = (x2 - x1, y2 - y1)
        mouth = np.zeros(frame.shape[:2], np.float32)
        if self.options.compose == "official":
            from talkingface.face.parsing import labels_to_mask

            mouth[y1:y2, x1:x2] = cv2.resize(labels_to_mask(labels, MOUTH_CLASSES), size) == 255
            mixed = self.parts.blend_region(restored, pasted, mouth, (y1, y2, x1, x2), levels=10)
            return self.parts.face_blend(mixed, frame, (y1, y2, x1, x2))
        mouth[y1:y2, x1:x2] = _class_mask(labels, MOUTH_CLASSES, size)
        mixed = self.parts.blend_region(restored, pasted, mouth, (y1, y2, x1, x2), levels=10)
        return self.parts.face_blend(mixed, frame, (y1, y2, x1, x2), _class_mask(labels, FACE_CLASSES, size))

    # ------------------------------------------------------------------ run
    def __call__(self, face: str | Path, audio: str | Path, outfile: str | Path) -> Path:
        """Lip-sync ``face`` (video or image) to ``audio``; the mp4 is written to ``outfile`` atomically.

        Input frames are decoded on demand, per-frame stage arrays live on disk
        (scratch / cache), and output frames are encoded as they are composed, so
        memory does not grow with the clip length.
        """
        face, audio, outfile = Path(face), Path(audio), Path(outfile)
        self.timings = {}
        # this call's noise source: ``noise: fresh`` draws E-Net's and GFPGAN's noise from it in the order
        # torch's global generator, seeded here before, gave them (the same numbers), without touching
        # the process's global random state
        noise = torch.Generator(device="cpu").manual_seed(self.options.seed)
        scratch = ClipScratch(self.options.cache_dir)
        try:
            return self._run(face, audio, outfile, scratch, noise)
        finally:
            scratch.close()

    def _run(self, face: Path, audio: Path, outfile: Path, scratch: ClipScratch, noise: torch.Generator) -> Path:
        from talkingface.media.video import VideoWriter

        with self._stage("read"):
            frames, fps = self.read(face)
        self.last_clip_frames = len(frames)
        state = ClipState(frames, fps, self.open_cache(face), scratch)
        with torch.inference_mode():
            cropped = self.crop_stage(state)
            lm = self.landmarks_stage(state, cropped["crops256"])
            coeffs = self.coeffs_stage(state, cropped["crops256"], lm)
            expression = self.expression_stage()
            stabilized = self.stabilize_stage(state, cropped["crops256"], coeffs, expression)
            wav, chunks = self.audio_stage(audio, fps)
            shown = state.head(len(chunks))  # the official drops frames beyond the last mel window here
            used = len(shown.frames)
            enhanced = self.enhance_reference_stage(shown, stabilized[:used])
            anchor = cropped["box"] if self.options.face_select is not None else None
            boxes = self.face_boxes_stage(shown, anchor)
            refs = self.references_stage(shown, enhanced, lm[:used], cropped["box"], cropped["quad"], boxes)
            num_samples = int(round(len(chunks) * self.options.sample_rate / fps))
            wav = np.pad(wav, (0, max(0, num_samples - len(wav))))[:num_samples]
            reset_noise = getattr(self.parts, "reset_noise", None)
            if reset_noise is not None:
                reset_noise(noise if self.options.noise == "fresh" else None)
            with VideoWriter(outfile, fps, wav, self.options.sample_rate) as writer, \
                    tqdm(total=len(chunks), desc="lip-sync", unit="frame", leave=False,
                         disable=len(chunks) < 16) as bar:
                for idx, preds in self.lipsync_stage(shown, chunks, boxes, refs, noise):
                    with self._stage("compose"):
                        if self.parts.compose_batch is not None:  # accel hook: the batch composed on the device
                            composed = self.parts.compose_batch([np.asarray(frames[j]) for j in idx], preds,
                                                                [boxes[j] for j in idx])
                        else:
                            composed = np.stack([self.compose_frame(np.asarray(frames[j]), pred, boxes[j])
                                                 for j, pred in zip(idx, preds)])
                    with self._stage("encode"):
                        writer.write(composed)
                    bar.update(len(idx))
        self.last_output_frames = writer.frames_written
        stand_ins = getattr(self.parts, "stand_ins", None)
        if stand_ins is not None:  # the counts are the process's: this clip's share is the change since the last
            before, self._stand_ins_counted = getattr(self, "_stand_ins_counted", {}), dict(stand_ins.counts)
            used = {k: v - before.get(k, 0) for k, v in stand_ins.counts.items()}
            if any(used.values()):
                log.warning("seeded stand-ins used for %s: %s", outfile.name,
                            ", ".join(f"{k} x{v}" for k, v in used.items() if v))
        if state.cache.hits:
            log.info("stage cache: reused %s", ", ".join(state.cache.hits))
        log.info("%s: %d frames in %s", outfile.name, writer.frames_written,
                 ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return outfile


class _ChannelSwapped:
    """A read-only view of an image sequence with R and B swapped, frame by frame (no full copy)."""

    def __init__(self, images: Any) -> None:
        self.images = images
        self.shape = images.shape

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(self.images[key])[..., ::-1])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _file_key(expression: str) -> str | None:
    """An expression image's content digest (a changed file at the same path is a new template)."""
    path = Path(expression)
    return file_digest(path) if expression not in ("neutral", "smile") and path.is_file() else None


def _class_mask(labels: np.ndarray, classes: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """Soft [0,1] mask of ``classes`` resized (bilinear) to ``size`` = (width, height)."""
    hard = np.isin(labels, classes).astype(np.float32)
    return cv2.resize(hard, size)


def _frame_for_step(i: int, n: int) -> int:
    """Frame to show for audio step ``i`` when audio outlasts the video (the reference wraps around)."""
    return i % n


def _crop_region(box: np.ndarray, quad: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The reference's (oy1, oy2, ox1, ox2): the FFHQ quad inside the crop box, in frame coordinates."""
    clx, cly, _, _ = [int(v) for v in box]
    lx, ly, rx, ry = [int(v) for v in quad]
    height, width = shape
    return cly + ly, min(cly + ry, height), clx + lx, min(clx + rx, width)


def _ranges(indices: list[int]) -> str:
    if not indices:
        return ""
    spans, start, prev = [], indices[0], indices[0]
    for i in list(indices[1:]) + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        spans.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(spans)
