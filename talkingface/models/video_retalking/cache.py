"""Per-clip stage cache and scratch space: results keyed by input content + the config that shapes them.

The reference recomputes 3DMM on every run (its cache check is dead code); here
each video-only stage is stored once as ``<cache>/<clip key>/<stage>-<options key>/``
(one ``.npy`` per array, the folder renamed into place when complete) and reused
until the input or an option *that stage depends on* changes (a new expression
recomputes D-Net onwards, not the crop or 3DMM), or ``re_preprocess``.

The per-frame image arrays of a long clip (crops, D-Net faces, references) do
not fit in memory, so stages write them into disk-backed arrays from
:meth:`ClipScratch.empty` and cached arrays are opened memory-mapped: RAM holds
the pages in use, not the clip.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from talkingface.weights.manifest import sha256_of

log = logging.getLogger(__name__)

#: arrays at least this large are memory-mapped when loaded from the cache
MMAP_BYTES = 16 << 20


def file_digest(path: str | Path) -> str:
    """The stage-cache key of an input file: its sha256, by the checkpoint manifest's one hash function."""
    return sha256_of(Path(path))


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ClipScratch:
    """A private folder for one pipeline call's disk-backed arrays, removed by :meth:`close`.

    It lives under the cache root when there is one, so that finished stage
    arrays can be *renamed* into the cache instead of copied. Its name carries
    the host and process id, so folders left by a killed process (SIGKILL, OOM:
    ``close`` never ran) are found and removed by the next scratch made on that
    host, while the scratch of live processes (other Ray workers) is left alone.
    """

    def __init__(self, root: str | Path | None) -> None:
        parent = Path(root) if root is not None else Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        remove_orphaned_scratch(parent)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_scratch_prefix()}{os.getpid()}-", dir=parent))

    def empty(self, name: str, shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
        """A writable disk-backed array (an ``.npy`` memmap) of ``shape``."""
        path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".npy", dir=self.folder)[1])
        return np.lib.format.open_memmap(path, "w+", np.dtype(dtype), tuple(int(s) for s in shape))

    def owns(self, array: np.ndarray) -> bool:
        filename = getattr(array, "filename", None)
        return filename is not None and Path(filename).parent == self.folder

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _scratch_prefix() -> str:
    return f".scratch-{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_orphaned_scratch(parent: Path) -> list[Path]:
    """Remove this host's scratch folders whose process is gone; returns what was removed."""
    removed = []
    prefix = _scratch_prefix()
    for folder in parent.glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _alive(int(pid)):
            log.info("removing the scratch folder of a killed run: %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class StageCache:
    """One folder per input clip; one sub-folder per stage and the options that stage depends on."""

    def __init__(self, root: str | Path | None, key_parts: dict[str, Any], enabled: bool = True) -> None:
        self.key = _digest(key_parts)
        self.enabled = enabled and root is not None
        self.folder = Path(root) / self.key if root is not None else None
        self.hits: list[str] = []
        self.misses: list[str] = []

    def clear(self) -> None:
        if self.folder is not None and self.folder.exists():
            shutil.rmtree(self.folder)

    def _path(self, stage: str, options: dict[str, Any]) -> Path:
        return self.folder / f"{stage}-{_digest(options)}"

    def load(self, stage: str, options: dict[str, Any]) -> dict[str, np.ndarray] | None:
        if not self.enabled:
            return None
        path = self._path(stage, options)
        if not path.is_dir():
            self.misses.append(stage)
            return None
        try:
            out = {}
            for file in sorted(path.glob("*.npy")):
                mmap = "r" if file.stat().st_size >= MMAP_BYTES else None
                out[file.stem] = np.load(file, mmap_mode=mmap, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("stage cache %s unreadable (%s): recomputing", path, exc)
            self.misses.append(stage)
            return None
        self.hits.append(stage)
        log.info("stage %s: cached (%s)", stage, self.key)
        return out

    def save(self, stage: str, options: dict[str, Any], arrays: dict[str, np.ndarray],
             scratch: ClipScratch | None = None) -> None:
        """Store ``arrays`` atomically; disk-backed arrays of ``scratch`` are moved, not copied."""
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._path(stage, options)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.folder))
        try:
            for name, array in arrays.items():
                if scratch is not None and scratch.owns(array):
                    array.flush()
                    os.replace(array.filename, tmp / f"{name}.npy")  # the open memmap stays valid
                else:
                    np.save(tmp / f"{name}.npy", np.asarray(array), allow_pickle=False)
            if target.exists():  # written meanwhile by another run of the same clip: same content
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
