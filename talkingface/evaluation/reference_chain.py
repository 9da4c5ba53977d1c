"""``lse_protocol: reference``: the reference tools' media chain, step by step.

Published LSE-D / LSE-C tables were made with syncnet_python (face tracks) and
Wav2Lip's ``evaluation/scores_LSE`` scripts (whole frames). Both re-encode the
video several times before SyncNet sees it, and that moves the numbers (LSE-D
about +1 % in face mode when skipped), so this module runs the same commands
with the same ``ffmpeg`` program, the same codecs and quality settings:

face mode (``run_pipeline.py`` then ``calculate_scores_real_videos.py``):

1. ``ffmpeg -y -i VIDEO -qscale:v 2 -async 1 -r 25 video.avi`` (mpeg4 video,
   the avi muxer's default audio codec, 25 fps by ffmpeg's frame-rate rule);
2. ``ffmpeg -y -i video.avi -qscale:v 2 -threads 1 -f image2 %06d.jpg``;
3. ``ffmpeg -y -i video.avi -ac 1 -vn -acodec pcm_s16le -ar 16000 audio.wav``;
4. faces detected on the JPEG frames (read with OpenCV, as RGB); shots found on
   ``video.avi`` decoded by OpenCV (PySceneDetect 0.5.1's video manager);
5. per track: crops cut from the JPEG frames, resized to 224 and written by
   OpenCV's ``VideoWriter`` as XVID at 25 fps; its audio cut with ``ffmpeg -y
   -i audio.wav -ss S -to E`` (3 decimals) and muxed with ``-c copy``;
6. per track, SyncNetInstance.evaluate: ``ffmpeg -y -i crop.avi -threads 1 -f
   image2 %06d.jpg`` and ``ffmpeg -y -i crop.avi -async 1 -ac 1 -vn -acodec
   pcm_s16le -ar 16000 audio.wav``; JPEGs read with OpenCV.

frame mode (``calculate_scores_LRS.py``): ``ffmpeg -y -i VIDEO -threads 1 -f
image2 %06d.jpg`` (no rate conversion: a 30 fps file is read as if it were 25
fps, as the script does), the audio as in step 6, each JPEG resized to 224.

The commands are given as argument lists (no shell), with ``-nostdin`` and
``-loglevel error`` added: neither changes what ffmpeg writes. Intermediate
files live in a temporary folder that is always removed.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from talkingface.errors import ConfigError, InputMediaError
from talkingface.evaluation import lse_crop

log = logging.getLogger(__name__)

FPS = 25
CROP_SIZE = 224
#: what a segment is: RGB 224x224 crops, int16 16 kHz mono audio, {"start", "end"} frame span
Segment = tuple[np.ndarray, np.ndarray, dict]


def ffmpeg_program() -> str:
    """The ``ffmpeg`` program the reference tools call (on PATH)."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise ConfigError("lse_protocol=reference needs the ffmpeg program (the reference tools' media chain "
                          "runs it), and it is not on PATH",
                          hint="install it (`sudo apt-get install -y ffmpeg`, done by `bash scripts/setup.sh`), "
                               "or score without re-encoding: --lse_protocol=direct (numbers not comparable "
                               "with published tables)")
    return found


def run_ffmpeg(*args: str | Path, source: str | Path | None = None) -> None:
    """One ffmpeg command; a failure names the input file and ffmpeg's own message."""
    command = [ffmpeg_program(), "-nostdin", "-loglevel", "error", *map(str, args)]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise InputMediaError(f"{source or args[2]}: ffmpeg failed ({' | '.join(tail) or f'exit {done.returncode}'})",
                              hint="check that the file is a readable video with a sound track, or use "
                                   "--lse_protocol=direct")


def _jpegs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jpg"))


def _read_bgr(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise InputMediaError(f"{path}: OpenCV cannot read this JPEG frame")
    return image


def _read_wav(path: Path) -> np.ndarray:
    from scipy.io import wavfile

    _, audio = wavfile.read(str(path))
    return np.asarray(audio)


def _extract_audio(video: Path, wav: Path, source: Path) -> np.ndarray:
    """SyncNetInstance.evaluate's audio step (also calculate_scores_LRS.py's)."""
    run_ffmpeg("-y", "-i", video, "-async", "1", "-ac", "1", "-vn", "-acodec", "pcm_s16le", "-ar", "16000", wav,
               source=source)
    return _read_wav(wav)


def _evaluate_inputs(video: Path, work: Path, source: Path, resize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frames (RGB) and int16 audio of one file, as SyncNetInstance.evaluate loads them."""
    frames_dir = work / "frames"
    frames_dir.mkdir()
    run_ffmpeg("-y", "-i", video, "-threads", "1", "-f", "image2", frames_dir / "%06d.jpg", source=source)
    audio = _extract_audio(video, work / "audio.wav", source)
    frames = []
    for path in _jpegs(frames_dir):
        image = _read_bgr(path)
        if resize:
            image = cv2.resize(image, (CROP_SIZE, CROP_SIZE))
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not frames:
        raise InputMediaError(f"{source}: ffmpeg extracted no frame", hint="is it a video file?")
    return np.stack(frames), audio


def frame_segments(video: str | Path) -> list[Segment]:
    """Wav2Lip's ``calculate_scores_LRS.py``: the whole file, every frame resized to 224."""
    video = Path(video)
    with tempfile.TemporaryDirectory(prefix="talkingface-lse-") as tmp:
        frames, audio = _evaluate_inputs(video, Path(tmp), video, resize=True)
    return [(frames, audio, {"start": 0, "end": len(frames)})]


class _JpegFrames:
    """The extracted frames as a sequence read on demand (full-size frames are not all held)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return _read_bgr(self.paths[index])


def _avi_frames_rgb(path: Path) -> Iterator[np.ndarray]:
    """``video.avi`` decoded by OpenCV, as PySceneDetect 0.5.1's VideoManager reads it."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def face_segments(video: str | Path, detector: Callable[[np.ndarray], np.ndarray],
                  config: lse_crop.TrackConfig = lse_crop.TrackConfig(),
                  on_tracks: Callable[[lse_crop.TrackReport], None] | None = None) -> list[Segment]:
    """syncnet_python's face-track pipeline and scoring inputs, one segment per kept track.

    Raises :class:`~talkingface.evaluation.base.SkipClip` (via the caller) when no
    track is kept: ``on_tracks`` receives the :class:`TrackReport` (tracks and why
    others were dropped) before the crops are made.
    """
    from talkingface.evaluation.base import SkipClip

    video = Path(video)
    with tempfile.TemporaryDirectory(prefix="talkingface-lse-") as tmp:
        work = Path(tmp)
        avi, frames_dir, audio_wav = work / "video.avi", work / "pyframes", work / "audio.wav"
        frames_dir.mkdir()
        run_ffmpeg("-y", "-i", video, "-qscale:v", "2", "-async", "1", "-r", str(FPS), avi, source=video)
        run_ffmpeg("-y", "-i", avi, "-qscale:v", "2", "-threads", "1", "-f", "image2", frames_dir / "%06d.jpg",
                   source=video)
        run_ffmpeg("-y", "-i", avi, "-ac", "1", "-vn", "-acodec", "pcm_s16le", "-ar", "16000", audio_wav,
                   source=video)
        frames = _JpegFrames(_jpegs(frames_dir))
        if not len(frames):
            raise InputMediaError(f"{video}: ffmpeg extracted no frame", hint="is it a video file?")
        detections = [np.asarray(detector(cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)), dtype=np.float64)
                      .reshape(-1, 5) for i in range(len(frames))]
        scenes = lse_crop.scene_cuts(_avi_frames_rgb(avi), config.scene_threshold, config.min_scene_len)
        report = lse_crop.face_tracks(None, config=config, detections=detections, scenes=scenes)
        if on_tracks is not None:
            on_tracks(report)
        if report.reason:
            raise SkipClip(report.reason)
        segments = []
        for index, track in enumerate(report.tracks):
            crop_avi = _write_track(frames, track, config.crop_scale, audio_wav, work / f"{index:05d}", video)
            track_work = work / f"eval{index:05d}"
            track_work.mkdir()
            crops, audio = _evaluate_inputs(crop_avi, track_work, video, resize=False)
            segments.append((crops, audio, {"start": track.start, "end": track.end}))
    return segments


def _write_track(frames: _JpegFrames, track: lse_crop.FaceTrack, crop_scale: float, audio_wav: Path,
                 base: Path, source: Path) -> Path:
    """run_pipeline.crop_video: XVID crop video + the track's audio cut, muxed into ``base.avi``."""
    silent = base.with_name(base.name + "t.avi")
    writer = cv2.VideoWriter(str(silent), cv2.VideoWriter_fourcc(*"XVID"), FPS, (CROP_SIZE, CROP_SIZE))
    if not writer.isOpened():
        raise ConfigError("OpenCV cannot write XVID video (its FFmpeg backend is missing)",
                          hint="install opencv-contrib-python-headless from requirements.txt, "
                               "or use --lse_protocol=direct")
    try:
        for i, frame_index in enumerate(track.frames):
            face = lse_crop.crop_window(frames[int(frame_index)], track.half_size[i], track.centre_x[i],
                                        track.centre_y[i], crop_scale)
            writer.write(cv2.resize(face, (CROP_SIZE, CROP_SIZE)))
    finally:
        writer.release()
    cut = base.with_name(base.name + "_audio.wav")
    start, end = track.start / FPS, track.end / FPS
    run_ffmpeg("-y", "-i", audio_wav, "-ss", f"{start:.3f}", "-to", f"{end:.3f}", cut, source=source)
    out = base.with_suffix(".avi")
    run_ffmpeg("-y", "-i", silent, "-i", cut, "-c:v", "copy", "-c:a", "copy", out, source=source)
    return out


__all__ = ["ffmpeg_program", "run_ffmpeg", "frame_segments", "face_segments"]
