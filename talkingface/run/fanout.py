"""Fan items out to Ray actors: one model (or one set of metric networks) per worker, loaded once.

Each actor writes its item's video and record (or its clip's scores) into the
(shared) run folder itself, atomically, exactly as the in-process path does; the
driver only collects results and draws the progress bar (and, for evaluation,
takes the aggregate: FID needs every clip's features). ``ray_address`` joins an existing
cluster (the run folder must then be on storage every node sees).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from talkingface import errors
from talkingface.config import Config
from talkingface.logs import setup_logging
from talkingface.run.items import generate_item
from talkingface.run.scoring import ScoreStore, lost_score, score_one

log = logging.getLogger(__name__)


#: what the Ray this process started was started for: ("address", addr) or ("local", num_cpus)
_STARTED_FOR: tuple[str, Any] | None = None


def init_ray(config: Config) -> Any:
    """Start or join the Ray that ``config`` asks for.

    A Ray already running in this process is reused only when it was started
    for the same ``ray_address`` (or the same local size): a later run that
    names a cluster must not silently run on the earlier run's local Ray.
    """
    global _STARTED_FOR
    import ray

    address = config.get("ray_address")
    # one CPU slot per core at most: more workers than cores only slow each other down
    slots = max(1, min(int(config["num_workers"]), os.cpu_count() or 1))
    wanted = ("address", address) if address else ("local", slots)
    if ray.is_initialized():
        if wanted == _STARTED_FOR:
            return ray
        log.info("the running Ray was started for %s; restarting it for %s", _describe(_STARTED_FOR),
                 _describe(wanted))
        ray.shutdown()
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False,
                              # workers import talkingface from the repo, wherever the driver runs
                              "runtime_env": {"env_vars": {"PYTHONPATH": _repo_path(),
                                                           "TALKINGFACE_NO_COLOR": "1"}}}
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, **kwargs)
    else:
        log.info("starting a local Ray (%d CPU slot(s) on %d core(s))", slots, os.cpu_count() or 1)
        ray.init(num_cpus=slots, **kwargs)
    _STARTED_FOR = wanted
    return ray


def _describe(started_for: tuple[str, Any] | None) -> str:
    if started_for is None:
        return "another caller"
    kind, value = started_for
    return f"address {value}" if kind == "address" else f"a local Ray with {value} CPU(s)"


def _repo_path() -> str:
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the talkingface package
    existing = os.environ.get("PYTHONPATH")
    return here if not existing else f"{here}{os.pathsep}{existing}"


def _setup_worker(config: Config) -> None:
    import torch

    setup_logging(config.get("log_level", "INFO"))
    torch.set_num_threads(1)


def _error_info(exc: BaseException) -> tuple[str, str, str | None]:
    """A worker's start-up error as (class name, message, hint): re-raised as itself in the driver."""
    if isinstance(exc, errors.TalkingFaceError):
        return type(exc).__name__, exc.message, exc.hint
    return type(exc).__name__, str(exc), None


def _raise_error_info(info: tuple[str, str, str | None]) -> None:
    name, message, hint = info
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.TalkingFaceError):
        raise cls(message, hint=hint)
    raise RuntimeError(f"a Ray worker could not start: {name}: {message}")


def _worker_class(ray: Any, num_gpus: float) -> Any:
    @ray.remote(num_cpus=1, num_gpus=num_gpus)
    class GenerateWorker:
        def __init__(self, model_cls: Any, weights: Any, config: Config) -> None:
            _setup_worker(config)
            self.config = config
            self.model = model_cls.from_config(config, weights)

        def generate(self, item: Any) -> dict[str, Any]:
            return generate_item(self.model, item, self.config)

    return GenerateWorker


def _score_worker_class(ray: Any, num_gpus: float) -> Any:
    @ray.remote(num_cpus=1, num_gpus=num_gpus)
    class ScoreWorker:
        """The metric networks (SyncNet, Inception, face detector) loaded once; scores clip after clip."""

        def __init__(self, metrics: list[str], config: dict[str, Any], store_root: str | None,
                     plots_dir: str | None) -> None:
            _setup_worker(config)
            from talkingface.evaluation.evaluator import ClipScorer

            self.error = None
            self.store = ScoreStore(store_root) if store_root else None
            self.plots_dir = plots_dir
            try:
                self.scorer = ClipScorer(metrics, config)
            except Exception as exc:  # a config error: reported once by the driver, not per clip
                self.error = _error_info(exc)

        def ready(self) -> tuple[str, str, str | None] | None:
            return self.error

        def score(self, task: Any, metrics: list[str], keys: dict[str, str]) -> tuple[str, dict[str, Any]]:
            return task.id, score_one(self.scorer, task, metrics, keys, self.store, self.plots_dir)

    return ScoreWorker


def _num_gpus(config: Config) -> float:
    import torch

    return float(config.get("num_gpus_per_worker", 1)) if torch.cuda.is_available() else 0.0


def _actor_count(ray: Any, config: Config, tasks: int, num_gpus: float) -> int:
    """``num_workers`` actors, at most one per task, and no more than the cluster can place
    (an actor that cannot be placed would wait forever, and its tasks with it)."""
    count = max(1, min(int(config["num_workers"]), tasks))
    resources = ray.cluster_resources()
    fits = int(resources.get("CPU", count))
    if num_gpus > 0:
        fits = min(fits, int(resources.get("GPU", 0) // num_gpus))
    room = (f"room for {fits} on the cluster: CPU {resources.get('CPU')}, GPU {resources.get('GPU', 0)}, "
            f"{num_gpus:g} GPU per worker")
    if fits < 1:
        from talkingface.errors import ConfigError

        raise ConfigError(f"no Ray worker fits on this cluster ({room})",
                          hint="lower --num_gpus_per_worker (e.g. 0.5 to share a GPU) or add nodes")
    final = max(1, min(count, fits))
    requested = int(config["num_workers"])
    if final < requested:
        why = [f"{tasks} item(s) to do"] if final == tasks else []
        why += [room] if final == fits else []
        log.warning("--num_workers=%d: running %d worker(s) (%s)", requested, final, ", ".join(why))
    else:
        log.info("running %d Ray worker(s)", final)
    return final


def fan_out(ray: Any, actors: list, tasks: list, call: Callable[[Any, Any], Any], desc: str,
            on_lost: Callable[[Any, str], None], unit: str = "item") -> Iterator[Any]:
    """Each task to the next idle actor; yields results as they finish.

    A task whose actor died (OOM, node loss) is handed to ``on_lost`` with the
    reason and not retried here (its result was never written, so a re-run does
    it); the dead actor gets no more work. When none is left, the remaining
    tasks are lost too.
    """
    from ray.exceptions import RayActorError

    idle = list(actors)
    pending = list(reversed(tasks))
    running: dict[Any, tuple[Any, Any]] = {}
    with tqdm(total=len(tasks), desc=f"{desc} ({len(actors)} workers)", unit=unit, dynamic_ncols=True) as bar:
        while pending or running:
            while idle and pending:
                actor, task = idle.pop(), pending.pop()
                running[call(actor, task)] = (actor, task)
            if not running:  # every actor died
                for task in reversed(pending):
                    on_lost(task, "no Ray worker left")
                    bar.update(1)
                return
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, task = running.pop(ref)
            try:
                result = ray.get(ref)
            except RayActorError as exc:
                on_lost(task, f"Ray worker died: {str(exc).splitlines()[0]}")
            except Exception as exc:  # the task raised: the actor is alive and takes the next one
                on_lost(task, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
                idle.append(actor)
            else:
                idle.append(actor)
                yield result
            bar.update(1)


def execute_on_ray(model_cls: Any, weights: Any, items: list, config: Config) -> dict[str, dict[str, Any]]:
    ray = init_ray(config)
    num_gpus = _num_gpus(config)
    worker_cls = _worker_class(ray, num_gpus)
    count = _actor_count(ray, config, len(items), num_gpus)
    workers = [worker_cls.remote(model_cls, weights, config) for _ in range(count)]

    def lost(item: Any, reason: str) -> None:  # its item stays pending for a re-run
        log.error("item %s: %s", item.id, reason)

    records: dict[str, dict[str, Any]] = {}
    try:
        for record in fan_out(ray, workers, items, lambda actor, it: actor.generate.remote(it), "generate", lost):
            records[record["id"]] = record
    finally:
        for worker in workers:
            ray.kill(worker)
    return records


def score_on_ray(todo: list, metrics: list[str], keys: dict[str, dict[str, str]], config: Any, store: Any,
                 plots_dir: Any) -> dict[str, dict[str, Any]]:
    """Score ``(task, metrics)`` pairs on ``num_workers`` actors; ``{clip: {metric: ClipScore}}``.

    Each actor writes its clips' scores to the (shared) store itself; the driver
    gets them back too (FID features included) for the aggregate.
    """
    ray = init_ray(config)
    num_gpus = _num_gpus(config)
    worker_cls = _score_worker_class(ray, num_gpus)
    count = _actor_count(ray, config, len(todo), num_gpus)
    store_root = str(store.root) if store is not None else None
    plots = os.path.abspath(plots_dir) if plots_dir is not None else None
    workers = [worker_cls.remote(metrics, dict(config), store_root, plots) for _ in range(count)]
    out: dict[str, dict[str, Any]] = {}

    def lost(entry: Any, reason: str) -> None:
        task, missing = entry
        log.error("clip %s not scored: %s", task.id, reason)
        out[task.id] = {name: lost_score(name, task.id, reason) for name in missing}

    try:
        for error in ray.get([w.ready.remote() for w in workers]):
            if error is not None:
                _raise_error_info(error)
        call = (lambda actor, entry: actor.score.remote(entry[0], entry[1], keys[entry[0].id]))
        for clip, scores in fan_out(ray, workers, todo, call, "evaluate", lost, unit="clip"):
            out[clip] = scores
    finally:
        for worker in workers:
            ray.kill(worker)
    return out


def shutdown() -> None:
    try:
        import ray
    except ImportError:
        return
    global _STARTED_FOR
    if ray.is_initialized():
        ray.shutdown()
    _STARTED_FOR = None
