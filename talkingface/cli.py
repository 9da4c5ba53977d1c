"""Command line: ``run_talkingface.py`` and ``python -m talkingface <command>``.

Any :class:`TalkingFaceError` becomes one paragraph on stderr and exit code 2;
tracebacks only with ``--debug``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from talkingface.config import describe_keys, load_config, parse_cli_value
from talkingface.config.schema import KEYS
from talkingface.errors import ConfigError, TalkingFaceError
from talkingface.execution import configure_threads
from talkingface.logs import setup_logging

log = logging.getLogger("talkingface")

USAGE = """usage: python run_talkingface.py --model=video_retalking --dataset=video-retalking [--key=value ...]

Generates every pair of a dataset subset with the model, evaluates (LSE-C/LSE-D,
FID, PSNR/SSIM) and writes saved/<model>-<dataset>-<time>/ (results.json/csv,
config.yaml, run.log, videos). Re-running the same command resumes.

options:
  -m, --model NAME          model (video_retalking)
  -d, --dataset NAME        dataset (video-retalking, lrs2, hdtf)
  --config_files A,B        extra YAML layers
  --debug                   show tracebacks
  -h, --help                this text

config keys (--key=value; YAML values, lists as a,b or [a,b]):
"""


def parse_overrides(argv: Sequence[str]) -> dict[str, Any]:
    """``--key=value`` / ``--key value`` / ``--flag`` / ``-m X`` / ``-d X`` into a dict."""
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

            raise ConfigError(f"command line: unknown option `--{name}`", hint=suggest(name))
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
    if isinstance(out.get("config_files"), str):
        out["config_files"] = [p for p in out["config_files"].split(",") if p]
    return out


def guarded(func: Callable[[list[str]], int], argv: Sequence[str]) -> int:
    """Run a command; map user errors to exit 2, interrupts to 130, bugs to 1."""
    debug = "--debug" in argv or "--debug=true" in argv
    try:
        return func(list(argv))
    except TalkingFaceError as exc:
        if debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  -> {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished items are saved; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n  -> run again with --debug for the traceback "
              "and report it", file=sys.stderr)
        return 1


def _run(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        try:
            defaults = load_config()
        except TalkingFaceError:
            defaults = None
        print(USAGE + describe_keys(defaults))
        return 0
    overrides = parse_overrides(argv)
    config = load_config(overrides.pop("model", None), overrides.pop("dataset", None),
                         overrides.get("config_files") or (), overrides)
    setup_logging(config["log_level"] if not config["debug"] else "DEBUG")
    configure_threads(config)
    from talkingface.runner import run

    _terminate_as_interrupt()
    results = run(config)
    counts = results.get("counts", {})
    if counts and counts.get("succeeded", 0) == 0 and (counts.get("failed", 0) or counts.get("skipped", 0)):
        log.error("no item succeeded")
        return 1
    return 0


def _terminate_as_interrupt() -> None:
    """SIGTERM (batch schedulers, `kill`) unwinds like Ctrl-C, so temp files are removed."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. embedded): keep the default
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of run_talkingface.py."""
    return guarded(_run, sys.argv[1:] if argv is None else argv)


def _checkpoints(argv: list[str]) -> int:
    from talkingface import checkpoints

    parser = argparse.ArgumentParser(prog="python -m talkingface checkpoints",
                                     description="official weight files: list, verify, download")
    parser.add_argument("action", choices=["list", "verify", "download"])
    parser.add_argument("names", nargs="*", help="manifest names (default: all)")
    parser.add_argument("--root", default=None, help="checkpoint folder (default ./checkpoints)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    names = args.names or list(checkpoints.MANIFEST)
    for name in names:
        checkpoints.get_spec(name)
    if args.action == "list":
        for name in names:
            spec = checkpoints.MANIFEST[name]
            print(f"{name:<15} {spec.filename:<40} {spec.group:<16} {spec.loader}\n{'':<15} {spec.url}")
        return 0
    if args.action == "verify":
        bad = 0
        for result in checkpoints.verify(names, args.root):
            print(f"{result.status:<16} {result.name:<15} {result.path or '-'}  {result.detail}")
            bad += result.status not in ("ok", "unchecked")
        if bad:
            print(f"\n{bad} file(s) missing or damaged; fix with:\n  python -m talkingface checkpoints download "
                  + " ".join(r.name for r in checkpoints.verify(names, args.root)
                             if r.status not in ("ok", "unchecked")), file=sys.stderr)
            return 2
        return 0
    setup_logging("INFO")
    for name in names:
        if checkpoints.find_checkpoint(name, args.root) is not None:
            print(f"present   {name}")
            continue
        print(f"download  {name} -> {checkpoints.download(name, args.root)}")
    return 0


def _sample(argv: list[str]) -> int:
    from talkingface.data.sample import make_sample_set

    parser = argparse.ArgumentParser(prog="python -m talkingface sample", description="rebuild the sample set")
    parser.add_argument("--root", default="dataset/video-retalking")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    setup_logging("INFO")
    for path in make_sample_set(args.root, force=args.force):
        print(path)
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {"run": _run, "checkpoints": _checkpoints, "sample": _sample}


def module_main(argv: Sequence[str] | None = None) -> int:
    """``python -m talkingface <command>``; no command (or options first) means ``run``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("evaluate", "infer"):
        import importlib

        module = importlib.import_module(f"talkingface.commands.{argv[0]}")
        return guarded(module.main, argv[1:])
    if argv and not argv[0].startswith("-"):
        command = COMMANDS.get(argv[0])
        if command is None:
            print(f"error: unknown command {argv[0]!r}\n  -> commands: run, checkpoints, evaluate, infer, sample",
                  file=sys.stderr)
            return 2
        return guarded(command, argv[1:])
    return guarded(_run, argv)
