"""The bundled sample set: a real face photo with small head motion + real speech.

Made from material packages ship (scikit-image's astronaut photo, espeak-ng
speech) so it can be rebuilt byte-for-byte-ish anywhere; the built files are
committed under dataset/video-retalking/ so a fresh clone needs neither.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from talkingface.data.base import Clip, Dataset
from talkingface.errors import DatasetError
from talkingface.registry import register

log = logging.getLogger(__name__)

FPS = 25
SIZE = 256
#: clip id -> (sentence, espeak voice, motion phase, horizontal flip)
SAMPLE_CLIPS: dict[str, tuple[str, str, float, bool]] = {
    "astronaut_a": ("The quick brown fox jumps over the lazy dog.", "en-us", 0.0, False),
    "astronaut_b": ("Lip sync editing needs clear speech and a steady face.", "en-gb", 1.3, True),
    "astronaut_c": ("Please read the numbers one two three four five.", "en-us+m3", 2.6, False),
}
# The astronaut's face in skimage.data.astronaut() (dlib box (175,76)-(265,166)): crop so it fills ~half the frame.
FACE_CROP = (130, 31, 310, 211)  # x0, y0, x1, y1


def speak(text: str, voice: str, out_wav: Path) -> np.ndarray:
    """Real speech from espeak-ng, resampled to 16 kHz mono."""
    from talkingface.media import load_audio

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DatasetError("espeak-ng is needed to rebuild the sample set",
                           hint="apt-get install espeak-ng (or use the committed dataset/video-retalking files)")
    subprocess.run([exe, "-v", voice, "-s", "150", "-w", str(out_wav), text], check=True, capture_output=True)
    return load_audio(out_wav)


def moving_face_frames(num_frames: int, phase: float, flip: bool) -> np.ndarray:
    """A still face photo given a small, smooth head motion (shift, tilt, zoom)."""
    import cv2
    import skimage.data

    photo = skimage.data.astronaut()
    if flip:
        photo = photo[:, ::-1].copy()
        x0, y0, x1, y1 = FACE_CROP
        width = photo.shape[1]
        crop = (width - x1, y0, width - x0, y1)
    else:
        crop = FACE_CROP
    x0, y0, x1, y1 = crop
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = x1 - x0
    frames = np.empty((num_frames, SIZE, SIZE, 3), np.uint8)
    for i in range(num_frames):
        t = i / FPS
        angle = 2.0 * np.sin(2 * np.pi * 0.4 * t + phase)
        scale = SIZE / side * (1.0 + 0.02 * np.sin(2 * np.pi * 0.3 * t + phase))
        dx = 3.0 * np.sin(2 * np.pi * 0.5 * t + phase)
        dy = 2.0 * np.cos(2 * np.pi * 0.35 * t + phase)
        m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
        m[0, 2] += SIZE / 2 - cx + dx
        m[1, 2] += SIZE / 2 - cy + dy
        frames[i] = cv2.warpAffine(photo, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return frames


def make_sample_set(root: str | Path, force: bool = False) -> list[Path]:
    """Build the sample clips (mp4 with speech muxed, and the wav) under ``root``."""
    from talkingface.media import samples_for_frames, write_video, write_wav

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    made = []
    for clip_id, (text, voice, phase, flip) in SAMPLE_CLIPS.items():
        video = root / f"{clip_id}.mp4"
        if video.exists() and not force:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            speech = speak(text, voice, Path(tmp) / "speech.wav")
        num_frames = int(np.ceil(len(speech) / 16000 * FPS))
        speech = np.pad(speech, (0, samples_for_frames(num_frames, FPS) - len(speech)))
        write_wav(root / f"{clip_id}.wav", speech)
        write_video(video, moving_face_frames(num_frames, phase, flip), FPS, speech, crf=20)
        made.append(video)
        log.info("sample clip %s: %d frames", clip_id, num_frames)
    (root / "clips.json").write_text(json.dumps(
        {k: {"text": v[0], "voice": v[1]} for k, v in SAMPLE_CLIPS.items()}, indent=2) + "\n")
    return made


@register("dataset", "video-retalking")
class SampleDataset(Dataset):
    """The bundled sample set (dataset/video-retalking)."""

    name = "video-retalking"

    def clips(self) -> list[Clip]:
        if not self.root.is_dir() or not any(self.root.glob("*.mp4")):
            log.info("sample set missing at %s: building it", self.root)
            make_sample_set(self.root)
        clips = []
        for video in sorted(self.root.glob("*.mp4")):
            wav = video.with_suffix(".wav")
            clips.append(Clip(video.stem, video, wav if wav.is_file() else video))
        from talkingface.data.base import select_subset

        wanted = select_subset([c.id for c in clips], self.config.get("subset"), str(self.root))
        by_id = {c.id: c for c in clips}
        return [by_id[i] for i in wanted]
