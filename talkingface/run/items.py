"""One item of a run: its paths in the run folder, its audio, its generation and its record.

The lowest layer of :mod:`talkingface.run`: the runner, in-process execution and
the Ray workers all generate an item through :func:`generate_item`, so a record
means the same thing whoever wrote it.
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkingface.atomic import atomic_write_json
from talkingface.config import Config
from talkingface.data.base import Pair
from talkingface.errors import TalkingFaceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One pair with every path its work touches inside the run folder."""
    pair: Pair
    run_dir: Path

    @property
    def id(self) -> str:
        return self.pair.id

    @property
    def video_out(self) -> Path:
        return self.run_dir / "videos" / f"{self.id}.mp4"

    @property
    def audio_out(self) -> Path:
        return self.run_dir / "audio" / f"{self.id}.wav"

    @property
    def record(self) -> Path:
        return self.run_dir / "items" / f"{self.id}.json"


def read_record(item: Item) -> dict[str, Any] | None:
    """A finished item's record, or None (absent, unreadable, or its video is gone)."""
    try:
        record = json.loads(item.record.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") == "ok" and not Path(record.get("generated_video", "")).is_file():
        return None
    return record


def prepare_audio(item: Item, config: Config) -> Path:
    """The pair's audio at 16 kHz mono, fitted to the face video's length (unpaired protocol)."""
    from talkingface.media import (
        fit_length,
        load_audio,
        probe,
        read_video,
        samples_for_frames,
        write_wav,
    )

    if item.audio_out.is_file():
        return item.audio_out
    fps = float(config["fps"])
    audio = load_audio(item.pair.audio, int(config["sample_rate"]))
    info = probe(item.pair.video) if not item.pair.video.suffix.lower() in (".png", ".jpg", ".jpeg") else {}
    if info.get("duration"):
        frames = int(round(info["duration"] * fps))
    else:
        frames = read_video(item.pair.video, fps, lazy=True).num_frames  # counts frames, holds none
    if config.get("max_seconds"):
        frames = min(frames, int(round(config["max_seconds"] * fps)))
    if item.pair.paired and not config.get("max_seconds"):
        fitted = audio
    else:
        fitted = fit_length(audio, samples_for_frames(frames, fps, int(config["sample_rate"])), config["audio_fit"])
    write_wav(item.audio_out, fitted, int(config["sample_rate"]))
    return item.audio_out


def generate_item(model: Any, item: Item, config: Config) -> dict[str, Any]:
    """Generate one item (with retries) and write its record; never raises for item errors.

    ``model``: a registered model object (``Model.from_config(config, weights)``): its
    ``generate(pair, audio, out_path)`` is ``model(video, audio, out_path)`` plus the record fields.
    """
    started = time.time()
    attempts = int(config.get("max_retries", 0)) + 1
    error = None
    for attempt in range(1, attempts + 1):
        try:
            audio = prepare_audio(item, config)
            out = model.generate(item.pair, audio, item.video_out)
            record = {"id": item.id, "status": "ok",
                      **{k: (v if isinstance(v, dict) else str(v)) for k, v in out.items()},
                      "pair": item.pair.to_dict(), "seconds": round(time.time() - started, 3),
                      "attempts": attempt}
            atomic_write_json(item.record, record)
            return record
        except NotImplementedError as exc:
            error = f"NotImplementedError: {exc}"
            break  # retrying cannot help
        except TalkingFaceError as exc:
            error = f"{type(exc).__name__}: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
            break  # the input is wrong: retrying cannot help
        except Exception as exc:  # an item must not take the batch down
            error = f"{type(exc).__name__}: {exc}"
            log.debug("item %s attempt %d failed:\n%s", item.id, attempt, traceback.format_exc())
            if attempt < attempts:
                log.warning("item %s failed (%s); retry %d/%d", item.id, error, attempt, attempts - 1)
    record = {"id": item.id, "status": "failed", "error": error, "pair": item.pair.to_dict(),
              "seconds": round(time.time() - started, 3)}
    atomic_write_json(item.record, record)
    log.error("item %s failed (video %s, audio %s): %s", item.id, item.pair.video, item.pair.audio, error)
    return record
