"""Fan items out to Ray actors: one model per worker, loaded once.

Each actor writes its item's video and record into the (shared) run folder
itself, atomically, exactly as the in-process path does; the driver only
collects records and draws the progress bar. ``ray_address`` joins an existing
cluster (the run folder must then be on storage every node sees).
"""
from __future__ import annotations

import logging
import os
from typing import Any

from tqdm import tqdm

from talkingface.config import Config

log = logging.getLogger(__name__)


def init_ray(config: Config) -> Any:
    import ray

    if ray.is_initialized():
        return ray
    address = config.get("ray_address")
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False,
                              # workers import talkingface from the repo, wherever the driver runs
                              "runtime_env": {"env_vars": {"PYTHONPATH": _repo_path(),
                                                           "TALKINGFACE_NO_COLOR": "1"}}}
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, **kwargs)
    else:
        workers = int(config["num_workers"])
        log.info("starting a local Ray with %d worker(s)", workers)
        ray.init(num_cpus=max(workers, 1), **kwargs)
    return ray


def _repo_path() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    existing = os.environ.get("PYTHONPATH")
    return here if not existing else f"{here}{os.pathsep}{existing}"


def _worker_class(ray: Any, num_gpus: float) -> Any:
    @ray.remote(num_cpus=1, num_gpus=num_gpus)
    class GenerateWorker:
        def __init__(self, model_cls: Any, weights: Any, config: Config) -> None:
            import torch

            from talkingface.logs import setup_logging

            setup_logging(config.get("log_level", "INFO"))
            torch.set_num_threads(1)
            self.config = config
            self.model = model_cls(config, weights)

        def generate(self, item: Any) -> dict[str, Any]:
            from talkingface.runner import generate_item

            return generate_item(self.model, item, self.config)

    return GenerateWorker


def execute_on_ray(model_cls: Any, weights: Any, items: list, config: Config) -> dict[str, dict[str, Any]]:
    ray = init_ray(config)
    import torch

    num_gpus = float(config.get("num_gpus_per_worker", 1)) if torch.cuda.is_available() else 0.0
    worker_cls = _worker_class(ray, num_gpus)
    count = max(1, min(int(config["num_workers"]), len(items)))
    workers = [worker_cls.remote(model_cls, weights, config) for _ in range(count)]
    from ray.util import ActorPool

    pool = ActorPool(workers)
    records: dict[str, dict[str, Any]] = {}
    pending = iter(items)
    with tqdm(total=len(items), desc=f"generate ({count} workers)", unit="item", dynamic_ncols=True) as bar:
        for item in pending:
            pool.submit(lambda actor, it: actor.generate.remote(it), item)
        while pool.has_next():
            try:
                record = pool.get_next_unordered()
            except Exception as exc:  # a worker died (OOM, node loss): its item stays pending for a re-run
                log.error("a Ray worker failed: %s", str(exc).splitlines()[0])
                bar.update(1)
                continue
            records[record["id"]] = record
            bar.update(1)
    for worker in workers:
        ray.kill(worker)
    return records


def shutdown() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
