"""What every command shares: the ``--key=value`` parser, the config of a command, logging, exit codes.

One parser for every command, so a config key is spelled the same on each; one
function (:func:`command_config`) turns the parsed options into a config, so
``--config_files`` means the same everywhere.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from talkingface.config import load_config, parse_cli_value
from talkingface.config.loader import Config, config_file_list
from talkingface.config.schema import KEYS
from talkingface.errors import EXIT_ITEMS_FAILED, EXIT_OK, ConfigError
from talkingface.logs import setup_logging

log = logging.getLogger("talkingface")

#: set by ``--debug`` on the command line (read by the CLI before the command runs) or ``debug: true`` in
#: the config (read once the command has loaded it): the CLI then lets tracebacks through
_debug = False


def set_debug(on: bool) -> None:
    """The command line's ``--debug``, recorded before the command starts (the CLI calls this)."""
    global _debug
    _debug = on


def debug_requested() -> bool:
    """Whether errors should keep their tracebacks: ``--debug`` or ``debug: true`` in the command's config."""
    return _debug


def parse_overrides(argv: Sequence[str], own: Sequence[str] = ()) -> dict[str, Any]:
    """``--key=value`` / ``--key value`` / ``--flag`` / ``-m X`` / ``-d X`` into a dict.

    ``own``: the command's own argument names, offered too when an option is misspelt.
    ``--config_files`` stays the text given; :func:`command_config` splits it.
    """
    aliases = {"-m": "model", "-d": "dataset"}
    out: dict[str, Any] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in aliases:
            if i + 1 >= len(args):
                raise ConfigError(f"{arg} needs a value", hint=f"e.g. {arg} {'video_retalking' if arg == '-m' else 'lrs2'}")
            out[aliases[arg]] = args[i + 1]
            i += 2
            continue
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}", hint="options look like --key=value")
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if name not in KEYS:
            from talkingface.config.loader import suggest

            raise ConfigError(f"command line: unknown option `--{name}`", hint=suggest(name, own))
        if not eq:
            if KEYS[name].type == "bool" and (i + 1 >= len(args) or args[i + 1].startswith("-")):
                out[name] = True
                i += 1
                continue
            if i + 1 >= len(args):
                raise ConfigError(f"--{name} needs a value", hint=KEYS[name].help)
            value = args[i + 1]
            i += 1
        i += 1
        out[name] = value if name == "config_files" else parse_cli_value(value)
    return out


def command_config(overrides: dict[str, Any], *, dataset: str | None = None, with_dataset: bool = True,
                   first_files: Sequence[str] = ()) -> Config:
    """The config of a command: defaults < model < dataset < ``first_files`` < ``--config_files`` < options.

    ``overrides`` come from :func:`parse_overrides` (``-m``/``-d`` pick the model and
    dataset layers); ``dataset`` forces the dataset layer (``sample`` builds the
    bundled set). ``first_files`` are YAML layers the command itself adds below the
    user's (``evaluate --run_dir``: the run's ``config.yaml``).
    """
    files = [*first_files, *config_file_list(overrides.get("config_files"))]
    return load_config(None, dataset, files, overrides, with_dataset=with_dataset)


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """argparse for a command's own arguments; every config key is taken by :func:`parse_overrides`.

    ``allow_abbrev=False``: a prefix such as ``--out`` must never be taken for another option.
    """
    return argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Every config key also works here as --key=value (the same name as in "
                                          "YAML), plus --config_files=a.yaml,b.yaml and --debug;\n"
                                          "`python run_talkingface.py --help` lists them all.")


def start_command(config: Any) -> None:
    """Logging from the config, in one place, so ``--debug`` means the same on every command.

    CPU threads are set later (:func:`~talkingface.runtime.configure_threads` imports torch), once the
    pre-flight checks have passed.
    """
    global _debug
    _debug = _debug or bool(config.get("debug"))
    setup_logging("DEBUG" if config.get("debug") else config["log_level"])


def rename_deprecated(argv: Sequence[str], renames: dict[str, str], command: str) -> list[str]:
    """Old option spellings keep working, with a warning naming the config key that replaces them."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        new = renames.get(name)
        if new is None:
            out.append(arg)
            continue
        print(f"warning: `{command} {name}` is deprecated and will be removed; use `{new.split('=')[0]}`"
              + (f" (here: {new})" if "=" in new else ""), file=sys.stderr)
        out.append(new if "=" in new else new + eq + value)
    return out


def items_exit_code(counts: dict[str, int]) -> int:
    """0 when every item succeeded; 3 when any failed or was not done, so scripts and CI notice."""
    if counts.get("failed", 0) or counts.get("skipped", 0):
        log.error("%d item(s) failed, %d skipped, %d succeeded: exit code %d. The table above gives each "
                  "reason; fix those inputs and run the same command again (finished items are kept)",
                  counts.get("failed", 0), counts.get("skipped", 0), counts.get("succeeded", 0), EXIT_ITEMS_FAILED)
        return EXIT_ITEMS_FAILED
    return EXIT_OK


def terminate_as_interrupt() -> None:
    """SIGTERM (batch schedulers, `kill`) unwinds like Ctrl-C, so temp files are removed."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. embedded): keep the default
        pass
