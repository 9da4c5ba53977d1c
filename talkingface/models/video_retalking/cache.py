"""Per-clip stage cache: results keyed by input content + the config that shapes them.

The reference recomputes 3DMM on every run (its cache check is dead code); here
each video-only stage is stored once as ``<cache>/<key>/<stage>.npz`` (atomic)
and reused until the input or a relevant option changes, or ``re_preprocess``.
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


class StageCache:
    def __init__(self, root: str | Path | None, key_parts: dict[str, Any], enabled: bool = True) -> None:
        blob = json.dumps(key_parts, sort_keys=True, default=str).encode()
        self.key = hashlib.sha256(blob).hexdigest()[:20]
        self.enabled = enabled and root is not None
        self.folder = Path(root) / self.key if root is not None else None
        self.hits: list[str] = []
        self.misses: list[str] = []

    def clear(self) -> None:
        if self.folder is not None and self.folder.exists():
            shutil.rmtree(self.folder)

    def load(self, stage: str) -> dict[str, np.ndarray] | None:
        if not self.enabled:
            return None
        path = self.folder / f"{stage}.npz"
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

    def save(self, stage: str, **arrays: np.ndarray) -> None:
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"{stage}.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
