"""Checks every command runs before torch is imported or a network is loaded.

A wrong path, a file without the stream it needs, a folder that cannot be
written or a device that does not exist must cost the user a second, not the
minutes of crop, landmarks, 3DMM and D-Net that run before the file is first
opened. Everything here uses PyAV's container probe and the file system only;
``torch`` is imported solely to ask whether a requested CUDA / MPS device exists.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from talkingface.errors import ConfigError, InputMediaError, OutputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEVICE_PATTERN = r"auto|cpu|cuda|cuda:[0-9]+|mps"


def check_media(path: str | Path, flag: str, *, video: bool = False, audio: bool = False,
                image_ok: bool = False, audio_hint: str | None = None) -> dict[str, Any]:
    """Probe one input file (container headers only) and say what is wrong with it.

    ``video`` / ``audio``: the stream the command needs; ``image_ok``: a still
    image is accepted in place of a video (``infer --face``); ``audio_hint``:
    what to do when the audio stream is missing, where the command knows better.
    """
    from talkingface.media.video import probe

    path = Path(path)
    if path.is_dir():
        raise InputMediaError(f"--{flag} {path}: is a folder, not a file",
                              hint=f"give one media file to --{flag}")
    if not path.is_file():
        raise InputMediaError(f"--{flag} {path}: no such file", hint=f"check the path given to --{flag}")
    if not os.access(path, os.R_OK):
        raise InputMediaError(f"--{flag} {path}: not readable (permission denied)",
                              hint="make it readable (chmod +r) or copy it somewhere readable")
    if image_ok and path.suffix.lower() in IMAGE_SUFFIXES:
        return _check_image(path, flag)
    try:
        info = probe(path)
    except InputMediaError as exc:
        raise InputMediaError(f"--{flag} {exc.message}", hint=exc.hint) from None
    if video and not info.get("has_video"):
        raise InputMediaError(f"--{flag} {path}: it has no video stream (audio only?)",
                              hint=f"give a video{' or an image' if image_ok else ''} with the face to --{flag}")
    if audio and not info.get("has_audio"):
        raise InputMediaError(f"--{flag} {path}: it has no audio stream",
                              hint=audio_hint or f"give a wav/mp3/m4a file or a video with sound to --{flag}")
    return info


def _check_image(path: Path, flag: str) -> dict[str, Any]:
    import cv2

    image = cv2.imread(str(path))
    if image is None:
        raise InputMediaError(f"--{flag} {path}: not a readable image",
                              hint="give a png/jpg image or a video with the face")
    return {"has_video": True, "has_audio": False, "width": image.shape[1], "height": image.shape[0]}


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _try_write(folder: Path, what: str, flag: str) -> None:
    """Create and remove a temp file: the only test that also holds for root and read-only mounts."""
    try:
        fd, name = tempfile.mkstemp(prefix=".talkingface-write-test.", dir=folder)
    except OSError as exc:
        reason = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.ENOSPC: "disk full"}.get(exc.errno, exc.strerror)
        raise OutputError(f"--{flag}: cannot write {what}: {folder} is not writable ({reason})",
                          hint=f"make {folder} writable or give --{flag} a folder you can write to") from None
    os.close(fd)
    os.unlink(name)


def _check_creatable(path: Path, under: Path, flag: str) -> None:
    """``path`` can be created below ``under``: its nearest existing ancestor is a writable folder."""
    base = _nearest_existing(under)
    if not base.is_dir():
        raise OutputError(f"--{flag} {path}: {base} is a file, so the folder cannot be created",
                          hint=f"give --{flag} a path under a folder")
    _try_write(base, str(path), flag)


def check_output_dir(path: str | Path, flag: str) -> Path:
    """A folder the command will create or fill: not a file, and writable (nothing is created)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"--{flag} {path}: is a file, not a folder",
                          hint=f"give --{flag} a folder (it is created when missing)")
    _check_creatable(path, path, flag)
    return path


def check_output_file(path: str | Path, flag: str, suffixes: Iterable[str] = (".mp4",)) -> Path:
    """An output file: not a folder, a known suffix, and its folder writable."""
    path = Path(path)
    if path.is_dir() or str(path).endswith(("/", os.sep)):
        raise OutputError(f"--{flag} {path}: is a folder, not a file name",
                          hint=f"give a file name, e.g. --{flag}={path / 'out.mp4'}")
    suffixes = tuple(suffixes)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"--{flag} {path}: unsupported file type {path.suffix or '(none)'!r}",
                          hint=f"end the name with {' or '.join(suffixes)}")
    _check_creatable(path, path.parent, flag)
    return path


def check_device(device: str) -> None:
    """The device exists on this machine: a clear error now instead of after every network is loaded."""
    device = str(device)
    if not re.fullmatch(DEVICE_PATTERN, device):
        raise ConfigError(f"--device={device} is not a device name",
                          hint="use auto, cpu, cuda, cuda:N (N = GPU index) or mps")
    if device.startswith("cuda"):
        if _torch_gpu_build() is False:  # a CPU-only wheel: no need to import torch to know
            raise ConfigError(f"--device={device}: no CUDA GPU is usable here (this PyTorch has no CUDA support)",
                              hint="use --device=cpu (or --device=auto, which picks a GPU when there is one)")
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device={device}: no CUDA GPU is usable here (this PyTorch "
                              f"{'has no CUDA support' if torch.version.cuda is None else 'finds no GPU'})",
                              hint="use --device=cpu (or --device=auto, which picks a GPU when there is one)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device={device}: there are only {torch.cuda.device_count()} CUDA GPU(s)",
                              hint=f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    elif device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise ConfigError("--device=mps: Apple's MPS backend is not available on this machine",
                              hint="use --device=cpu or --device=auto")


def _torch_gpu_build() -> bool | None:
    """Whether the installed torch was built with CUDA/ROCm, read from torch/version.py without importing
    torch (seconds); None when that cannot be told."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
        folder = Path(next(iter(spec.submodule_search_locations or [])))
        text = (folder / "version.py").read_text(encoding="utf-8")
    except (ImportError, StopIteration, OSError, AttributeError):
        return None
    values = dict(re.findall(r"^(cuda|hip)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", text, flags=re.M))
    if set(values) != {"cuda", "hip"}:
        return None
    return not (values["cuda"] == "None" and values["hip"] == "None")


def check_checkpoints(config: Any, names: Iterable[str]) -> None:
    """``weights: official``: every file the run will load is present (file system only)."""
    if config.get("weights") != "official":
        return
    from talkingface.weights import manifest as checkpoints

    checkpoints.require(list(dict.fromkeys(names)), config.get("checkpoint_dir"))
