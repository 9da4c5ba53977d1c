"""``weights: official | seeded | auto`` — decide once per run, say it loudly.

Numbers from seeded weights are meaningless as results; they exist so the whole
path can run and be tested without the release files. Every log and result
file of such a run carries :data:`SEEDED_BANNER`.
"""
from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from talkingface.weights import manifest as checkpoints
from talkingface.errors import CheckpointError
from talkingface.weights.seeded import SEEDED_PROTOCOL

log = logging.getLogger(__name__)

SEEDED_BANNER = (f"SEEDED WEIGHTS ({SEEDED_PROTOCOL}): deterministic test weights, NOT the official checkpoints. "
                 "Outputs and metrics of this run are meaningless as results.")


@dataclass
class WeightsChoice:
    mode: str  # "official" | "seeded"
    seed: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    reason: str = ""

    @property
    def seeded(self) -> bool:
        return self.mode == "seeded"

    def describe(self) -> dict:
        if self.seeded:
            return {"weights": f"seeded ({SEEDED_PROTOCOL}, seed={self.seed})", "warning": SEEDED_BANNER,
                    "reason": self.reason}
        return {"weights": "official", "files": {k: str(v) for k, v in self.files.items()}}


def _release_reachable(timeout: float = 3.0) -> bool:
    try:
        base = checkpoints.mirror_base() or checkpoints.RELEASE  # a mirror (TALKINGFACE_CHECKPOINT_MIRROR) first
        urllib.request.urlopen(urllib.request.Request(base, method="HEAD"), timeout=timeout)
        return True
    except Exception:  # offline, DNS failure, HTTP error: all mean "cannot download now"
        return False


def banner(text: str) -> None:
    line = "!" * min(100, len(text) + 8)
    log.warning(line)
    log.warning("!!! %s", text)
    log.warning(line)


def choose_weights(mode: str, names: Iterable[str], root: str | Path | None, seed: int = 0) -> WeightsChoice:
    """Resolve the weights mode against the files present (pre-flight: before any work)."""
    names = list(dict.fromkeys(names))
    if mode == "seeded":
        choice = WeightsChoice("seeded", seed, reason="requested with weights=seeded")
        banner(SEEDED_BANNER)
        return choice
    missing = [n for n in names if checkpoints.find_checkpoint(n, root) is None]
    if mode == "official" or not missing:
        return WeightsChoice("official", seed, checkpoints.require(names, root))
    if mode != "auto":
        raise CheckpointError(f"unknown weights mode {mode!r}", hint="use official, seeded or auto")
    if _release_reachable():
        log.info("weights=auto: downloading %d missing file(s)", len(missing))
        try:
            for name in missing:
                checkpoints.download(name, root)
            return WeightsChoice("official", seed, checkpoints.require(names, root))
        except CheckpointError as exc:
            log.warning("download failed: %s", exc.message)
    reason = (f"weights=auto: {len(missing)} official file(s) missing and not downloadable "
              f"({', '.join(checkpoints.get_spec(n).filename for n in missing)})")
    choice = WeightsChoice("seeded", seed, reason=reason)
    banner(reason)
    banner(SEEDED_BANNER)
    return choice
