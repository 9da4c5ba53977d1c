"""The evaluation defaults: ``talkingface/config/evaluation.yaml``, read once.

That file is the one place the evaluation settings are written (the reference
tools' own settings). The config loader layers it under every command; code
that builds an :class:`~talkingface.evaluation.base.EvalContext` from a partial
dict (tests, library use) gets the same values from here, so no metric carries
a default of its own.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from talkingface.config.loader import CONFIG_DIR, coerce, read_yaml
from talkingface.config.schema import KEYS

DEFAULTS_FILE = CONFIG_DIR / "evaluation.yaml"


@lru_cache(maxsize=1)
def _defaults() -> tuple[tuple[str, Any], ...]:
    data = read_yaml(DEFAULTS_FILE)
    return tuple((name, coerce(KEYS[name], value, DEFAULTS_FILE.name)) for name, value in data.items())


def evaluation_defaults() -> dict[str, Any]:
    """Every evaluation key with its default (a fresh dict)."""
    return dict(_defaults())


def with_defaults(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` with the evaluation defaults filled in where a key is absent."""
    out = evaluation_defaults()
    out.update(config or {})
    return out
