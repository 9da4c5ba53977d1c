"""Name -> class registries for models, datasets and metrics (timm-style).

Registration happens at import of the defining module; :func:`ensure_builtins`
imports the built-in ones lazily so that ``--help`` and config checks stay fast
and a broken optional part cannot break unrelated commands.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from talkingface.errors import RegistryError

T = TypeVar("T")

# kind -> name -> "module:attr" of built-ins, imported on first lookup.
_BUILTINS: dict[str, dict[str, str]] = {
    "model": {
        "video_retalking": "talkingface.models.video_retalking.model:VideoReTalking",
        "identity": "talkingface.models.identity:IdentityModel",
    },
    "dataset": {
        "video-retalking": "talkingface.data.sample:SampleDataset",
        "lrs2": "talkingface.data.lrs2:LRS2Dataset",
        "hdtf": "talkingface.data.hdtf:HDTFDataset",
    },
    "metric": {
        "lse": "talkingface.evaluation.lse:LSEMetric",
        "fid": "talkingface.evaluation.fid:FIDMetric",
        "psnr": "talkingface.evaluation.fidelity:PSNRMetric",
        "ssim": "talkingface.evaluation.fidelity:SSIMMetric",
    },
}
_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in _BUILTINS}
_MISSING = object()


def register(kind: str, name: str) -> Callable[[T], T]:
    """Decorator: ``@register("metric", "lse")``."""
    def decorator(obj: T) -> T:
        _REGISTRY.setdefault(kind, {})[name] = obj
        return obj
    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registration made with :func:`register` (tests and plugins that unload)."""
    _REGISTRY.get(kind, {}).pop(name, None)


@contextmanager
def registered(kind: str, name: str, obj: Any) -> Iterator[Any]:
    """``obj`` registered as ``name`` for the ``with`` block only, the previous entry restored after."""
    table = _REGISTRY.setdefault(kind, {})
    previous = table.get(name, _MISSING)
    table[name] = obj
    try:
        yield obj
    finally:
        if previous is _MISSING:
            table.pop(name, None)
        else:
            table[name] = previous


def snapshot() -> dict[str, dict[str, Any]]:
    """A copy of every registration, for :func:`restore` (test isolation)."""
    return {kind: dict(table) for kind, table in _REGISTRY.items()}


def restore(state: dict[str, dict[str, Any]]) -> None:
    _REGISTRY.clear()
    _REGISTRY.update({kind: dict(table) for kind, table in state.items()})


def known(kind: str) -> list[str]:
    return sorted(set(_REGISTRY.get(kind, {})) | set(_BUILTINS.get(kind, {})))


def get(kind: str, name: str) -> Any:
    """The class registered as ``name``; an unknown name lists the known ones."""
    if kind not in _BUILTINS and kind not in _REGISTRY:
        raise RegistryError(f"unknown registry kind {kind!r}")
    if name in _REGISTRY[kind]:
        return _REGISTRY[kind][name]
    target = _BUILTINS.get(kind, {}).get(name)
    if target is None:
        names = known(kind)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RegistryError(f"unknown {kind} {name!r}",
                            hint=f"{hint}known {kind}s: {', '.join(names)}")
    module_name, attr = target.split(":")
    obj = getattr(importlib.import_module(module_name), attr)
    _REGISTRY[kind].setdefault(name, obj)
    return _REGISTRY[kind][name]
