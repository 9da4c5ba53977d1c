"""Per-clip stage cache: results keyed by input content + the config that shapes them.

The reference recomputes 3DMM on every run (its cache check is dead code); here
each video-only stage is stored once as ``<cache>/<clip key>/<stage>-<options key>.npz``
(atomic) and reused until the input or an option *that stage depends on*
changes (a new expression recomputes D-Net onwards, not the crop or 3DMM), or
``re_preprocess``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from talkingface.atomic import atomic_path

log = logging.getLogger(__name__)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class StageCache:
    """One folder per input clip; one file per stage and the options that stage depends on."""

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
        return self.folder / f"{stage}-{_digest(options)}.npz"

    def load(self, stage: str, options: dict[str, Any]) -> dict[str, np.ndarray] | None:
        if not self.enabled:
            return None
        path = self._path(stage, options)
        if not path.is_file():
            self.misses.append(stage)
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                out = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            log.warning("stage cache %s unreadable (%s): recomputing", path, exc)
            self.misses.append(stage)
            return None
        self.hits.append(stage)
        log.info("stage %s: cached (%s)", stage, self.key)
        return out

    def save(self, stage: str, options: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self._path(stage, options)) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
