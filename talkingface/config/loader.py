"""Layered YAML config: overall < model < dataset < --config_files < command line.

Values are parsed as YAML scalars (``yaml.safe_load``), never evaluated, then
checked against :mod:`talkingface.config.schema`; every error names the layer
(file or command line) and the key, and suggests the closest known key.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from talkingface.config.schema import KEYS, Key
from talkingface.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent


class Config(dict):
    """A plain dict with attribute access and a record of where each value came from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origin: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(_plain(dict(self)), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def suggest(name: str, extra: Iterable[str] = ()) -> str:
    """The closest known key (or command argument in ``extra``) to a misspelt one."""
    close = difflib.get_close_matches(name, [*extra, *KEYS], n=1, cutoff=0.5)
    return f"did you mean `{close[0]}`?" if close else "run with --help to list the keys"


def _type_error(key: Key, value: Any, where: str) -> ConfigError:
    expected = key.type + (f" in {list(key.choices)}" if key.choices else "") + (" or null" if key.nullable else "")
    return ConfigError(f"{where}: `{key.name}` must be {expected}, got {value!r}",
                       hint=f"{key.name}: {key.help}")


def coerce(key: Key, value: Any, where: str) -> Any:
    """Check and normalise one value against its schema entry."""
    if value is None:
        if key.nullable:
            return None
        raise _type_error(key, value, where)
    kind = key.type
    if kind == "any":
        out = value
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(key, value, where)
        out = value
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _type_error(key, value, where)
        out = value
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(key, value, where)
        out = float(value)
    elif kind in ("str", "path"):
        if isinstance(value, (dict, list, bool)):
            raise _type_error(key, value, where)
        out = str(value)
    elif kind.startswith("list["):
        item_type = kind[5:-1]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise _type_error(key, value, where)
        item_key = Key(key.name, item_type, key.help)
        out = [coerce(item_key, v, where) for v in value]
    else:  # pragma: no cover - schema bug
        raise AssertionError(kind)
    if key.choices is not None and out not in key.choices:
        raise _type_error(key, out, where)
    if key.pattern is not None and not re.fullmatch(key.pattern, str(out)):
        raise ConfigError(f"{where}: `{key.name}` must match {key.pattern!r}, got {out!r}",
                          hint=f"{key.name}: {key.help}")
    if key.minimum is not None and isinstance(out, (int, float)) and out < key.minimum:
        raise ConfigError(f"{where}: `{key.name}` must be >= {key.minimum}, got {out!r}",
                          hint=f"{key.name}: {key.help}")
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", hint="check the path given to --config_files")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc)
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            raise ConfigError(f"config file {path}{where}: {problem}",
                              hint="YAML tags such as !!python/... are not allowed: config values are plain data "
                                   "(numbers, strings, lists), never code; write the value itself") from None
        raise ConfigError(f"config file {path} does not parse as YAML{where}: {problem}",
                          hint="fix the YAML syntax (key: value, one per line)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", hint="save it as UTF-8 YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, got {type(data).__name__}",
                          hint="write one `key: value` per line")
    return data


def parse_cli_value(text: str) -> Any:
    """A command-line value as a YAML scalar/list (data only: never executed)."""
    try:
        return yaml.safe_load(text) if text != "" else None
    except yaml.YAMLError:
        return text


def _merge(config: Config, layer: Mapping[str, Any], where: str) -> None:
    for name, value in layer.items():
        if not isinstance(name, str) or name not in KEYS:
            raise ConfigError(f"{where}: unknown key `{name}`", hint=suggest(str(name)))
        config[name] = coerce(KEYS[name], value, where)
        config.origin[name] = where


#: environment variable holding the default ``checkpoint_dir`` (below every config layer)
CHECKPOINTS_ENV = "TALKINGFACE_CHECKPOINTS"


def config_file_list(value: Any) -> list[str]:
    """``--config_files``: ``a.yaml,b.yaml`` or a list, as the list of files; the one parser of that option."""
    return coerce(KEYS["config_files"], [] if value is None else value, "command line")


def load_config(model: str | None = None, dataset: str | None = None,
                config_files: Iterable[str | Path] = (), overrides: Mapping[str, Any] | None = None,
                config_dir: Path = CONFIG_DIR, *, with_dataset: bool = True) -> Config:
    """Resolve the five layers into one checked :class:`Config`.

    ``with_dataset=False`` leaves the dataset layer out (``infer``, ``evaluate``
    without ``--dataset``): a dataset's settings, such as the sample set's
    ``max_seconds: 0.6``, must never change what a user's own clip becomes.
    """
    overrides = dict(overrides or {})
    config = Config()
    _merge(config, read_yaml(config_dir / "overall.yaml"), "overall.yaml")
    if os.environ.get(CHECKPOINTS_ENV):  # a machine-wide default folder; any config layer or flag wins
        _merge(config, {"checkpoint_dir": os.environ[CHECKPOINTS_ENV]}, f"${CHECKPOINTS_ENV}")
    if (config_dir / "evaluation.yaml").is_file():  # the evaluation defaults, part of layer 1
        _merge(config, read_yaml(config_dir / "evaluation.yaml"), "evaluation.yaml")
    model = model or overrides.get("model") or config["model"]
    dataset = dataset or overrides.get("dataset") or config["dataset"]
    config["model"], config["dataset"] = model, dataset
    for sub, name in (("model", model), ("dataset", dataset)):
        if sub == "dataset" and not with_dataset:
            continue
        path = config_dir / sub / f"{name}.yaml"
        if path.is_file():
            _merge(config, read_yaml(path), f"{sub}/{name}.yaml")
    files = list(config_files) or config_file_list(overrides.get("config_files"))
    for path in files:
        _merge(config, read_yaml(path), str(path))
    _merge(config, overrides, "command line")
    config["config_files"] = [str(p) for p in files]
    return config


def describe_keys(config: Mapping[str, Any] | None = None) -> str:
    """``--help`` text: every key, its default and one line."""
    lines = []
    width = max(len(k) for k in KEYS)
    for name, key in KEYS.items():
        default = "" if config is None else f" (default: {_plain(config.get(name))!r})"
        lines.append(f"  --{name:<{width}}  {key.help}{default}")
    return "\n".join(lines)
