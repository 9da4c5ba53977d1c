"""Where a run's work happens: in-process (num_workers=0) or on Ray actors.

Generation and scoring both choose here, so the layers below (items, scoring)
never call up into the Ray fan-out. Items already finished in the run folder
are skipped before anything is loaded, so a resumed run costs nothing for the
work that is done.
"""
from __future__ import annotations

import logging
from typing import Any

from tqdm import tqdm

from talkingface.config import Config
from talkingface.run import fanout
from talkingface.run.items import generate_item, read_record
from talkingface.run.scoring import ClipExecutor

log = logging.getLogger(__name__)


def pending_items(items: list, config: Config) -> tuple[list, dict[str, dict[str, Any]]]:
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for item in items:
        record = read_record(item) if config.get("resume", True) else None
        if record is not None and record.get("status") == "ok":
            done[item.id] = record
        else:
            todo.append(item)
    if done:
        log.info("resume: %d item(s) already finished, %d to do", len(done), len(todo))
    return todo, done


def execute(model_cls: Any, weights: Any, items: list, config: Config) -> dict[str, dict[str, Any]]:
    todo, records = pending_items(items, config)
    if not todo:
        return records
    if int(config.get("num_workers", 0)) > 0:
        records.update(fanout.execute_on_ray(model_cls, weights, todo, config))
        return records
    model = model_cls.from_config(config, weights)
    with tqdm(total=len(todo), desc="generate", unit="item", dynamic_ncols=True) as bar:
        for item in todo:
            records[item.id] = generate_item(model, item, config)
            bar.update(1)
    return records


def clip_executor(config: Config | dict[str, Any]) -> ClipExecutor | None:
    """How clips are scored: Ray actors for ``num_workers`` > 0, else None (in-process, Ray never imported)."""
    return fanout.score_on_ray if int(config.get("num_workers") or 0) > 0 else None
