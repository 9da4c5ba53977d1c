"""Run the generation of items: in-process (num_workers=0) or on Ray actors.

Items already finished in the run folder are skipped before anything is
loaded, so a resumed run costs nothing for the work that is done.
"""
from __future__ import annotations

import logging
from typing import Any

from tqdm import tqdm

from talkingface.config import Config

log = logging.getLogger(__name__)


def configure_threads(config: Config) -> None:
    """``num_threads`` > 0 caps torch's and OpenCV's CPU threads in this process.

    On a shared or small machine, fewer threads than cores avoids
    oversubscription (2 torch threads beside other work measured up to 3x slower
    than 1 on the 2-core dev VM, bench/results/batch.md).
    """
    threads = int(config.get("num_threads", 0) or 0)
    if threads > 0:
        import cv2
        import torch

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        log.info("CPU threads: %d", threads)


def pending_items(items: list, config: Config) -> tuple[list, dict[str, dict[str, Any]]]:
    from talkingface.run.runner import read_record

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
        from talkingface.run.fanout import execute_on_ray

        records.update(execute_on_ray(model_cls, weights, todo, config))
        return records
    from talkingface.run.runner import generate_item

    model = model_cls(config, weights)
    with tqdm(total=len(todo), desc="generate", unit="item", dynamic_ncols=True) as bar:
        for item in todo:
            records[item.id] = generate_item(model, item, config)
            bar.update(1)
    return records
