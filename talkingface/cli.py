"""Command line: ``run_talkingface.py`` and ``python -m talkingface <command>``.

Exit codes, the same on every command: 0 done; 2 a user error (one paragraph on
stderr: what, where, what to do; tracebacks only with ``--debug``); 3 the batch
finished but some items failed or were not done (the table lists them); 130
interrupted; 1 a bug.
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
  --debug                   show tracebacks (the same on every command)
  -h, --help                this text (`python -m talkingface --help`: the other commands)

exit codes: 0 done; 2 bad input, stopped before any work (what, where, what to do); 3 the batch
finished but items failed or were not done (listed in the table); 130 interrupted; 1 a bug.

config keys (--key=value; YAML values, lists as a,b or [a,b]):
"""


def parse_overrides(argv: Sequence[str], own: Sequence[str] = ()) -> dict[str, Any]:
    """``--key=value`` / ``--key value`` / ``--flag`` / ``-m X`` / ``-d X`` into a dict.

    ``own``: the command's own argument names, offered too when an option is misspelt.
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
    if isinstance(out.get("config_files"), str):
        out["config_files"] = [p for p in out["config_files"].split(",") if p]
    return out


#: Exit codes of every command (README "Exit codes").
EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_ITEMS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

BATCH_INTERRUPTED = "interrupted: finished items are saved; run the same command again to resume"
_debug = False


def wants_debug(argv: Sequence[str]) -> bool:
    """``--debug`` / ``--debug=true`` / ``--debug true``: the one spelling every command shares."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--debug":
            following = args[i + 1] if i + 1 < len(args) else ""
            return following.lower() not in ("false", "no", "0", "off")
        if arg.startswith("--debug="):
            return parse_cli_value(arg.partition("=")[2]) is True
    return False


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


def guarded(func: Callable[[list[str]], int], argv: Sequence[str], interrupted: str = BATCH_INTERRUPTED) -> int:
    """Run a command; user errors -> 2, failed items -> 3, interrupts -> 130, bugs -> 1."""
    global _debug
    _debug = wants_debug(argv)
    try:
        return func(list(argv))
    except TalkingFaceError as exc:
        if _debug:
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  -> {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if _debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n  -> run again with --debug for the traceback "
              "and report it", file=sys.stderr)
        return EXIT_BUG


def items_exit_code(counts: dict[str, int]) -> int:
    """0 when every item succeeded; 3 when any failed or was not done, so scripts and CI notice."""
    if counts.get("failed", 0) or counts.get("skipped", 0):
        log.error("%d item(s) failed, %d skipped, %d succeeded: exit code %d. The table above gives each "
                  "reason; fix those inputs and run the same command again (finished items are kept)",
                  counts.get("failed", 0), counts.get("skipped", 0), counts.get("succeeded", 0), EXIT_ITEMS_FAILED)
        return EXIT_ITEMS_FAILED
    return EXIT_OK


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
    start_command(config)
    from talkingface.run.runner import run

    _terminate_as_interrupt()
    results = run(config)
    return items_exit_code(results.get("counts", {}))


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


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """argparse for a command's own arguments; every config key is taken by :func:`parse_overrides`.

    ``allow_abbrev=False``: a prefix such as ``--out`` must never be taken for another option.
    """
    return argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Every config key also works here as --key=value (the same name as in "
                                          "YAML), plus --config_files=a.yaml,b.yaml and --debug;\n"
                                          "`python run_talkingface.py --help` lists them all.")


def _checkpoints(argv: list[str]) -> int:
    from talkingface.weights import manifest as checkpoints

    argv = rename_deprecated(argv, {"--root": "--checkpoint_dir"}, "checkpoints")
    parser = command_parser("python -m talkingface checkpoints",
                            "official weight files: list, verify, download. Without names, verify and download "
                            "take the files the current config needs (model, metrics, options); --all takes "
                            "every file.")
    parser.add_argument("action", choices=["list", "verify", "download"])
    parser.add_argument("names", nargs="*", help="manifest names (default: what the config needs; list: all)")
    parser.add_argument("--all", action="store_true", help="every file of the manifest")
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest, ("all",))
    config = load_config(overrides.pop("model", None), overrides.pop("dataset", None),
                         overrides.get("config_files") or (), overrides)
    start_command(config)
    root = config["checkpoint_dir"]
    if args.names:
        names = list(args.names)
        for name in names:
            checkpoints.get_spec(name)
    elif args.all or args.action == "list":
        names = list(checkpoints.MANIFEST)
    else:
        names = needed_checkpoints(config)
        print(f"{len(names)} file(s) needed by model={config['model']}, metrics={','.join(config['metrics'])} "
              f"and their options (--all for every file)", file=sys.stderr)
    if args.action == "list":
        for name in names:
            spec = checkpoints.MANIFEST[name]
            print(f"{name:<15} {spec.filename:<40} {spec.group:<16} {spec.loader}\n{'':<15} {spec.url}")
        return 0
    if args.action == "verify":
        results = checkpoints.verify(names, root)
        for result in results:
            print(f"{result.status:<16} {result.name:<15} {result.path or '-'}  {result.detail}")
        bad = [r.name for r in results if r.status not in ("ok", "unchecked")]
        if bad:
            print(f"\n{len(bad)} file(s) missing or damaged in {checkpoints.checkpoint_root(root)}; fix with:\n  "
                  f"{checkpoints.fix_command(bad)}" + (f" --checkpoint_dir={root}" if root != "checkpoints" else ""),
                  file=sys.stderr)
            return EXIT_USER
        return EXIT_OK
    mirror = checkpoints.mirror_base(config.get("checkpoint_mirror"))
    for name in names:
        if checkpoints.find_checkpoint(name, root) is not None:
            print(f"present   {name}")
            continue
        print(f"download  {name} -> {checkpoints.download(name, root, mirror=mirror)}")
    return EXIT_OK


def needed_checkpoints(config: Any) -> list[str]:
    """The files a command with this config loads: the model's (for its options) and the metrics'."""
    from talkingface import registry
    from talkingface.run import scoring

    names = list(registry.get("model", config["model"]).required_checkpoints(config))
    names += scoring.required_checkpoints(config)
    return list(dict.fromkeys(names))


def _sample(argv: list[str]) -> int:
    argv = rename_deprecated(argv, {"--root": "--dataset_root"}, "sample")
    parser = command_parser("python -m talkingface sample", "rebuild the bundled sample set (needs espeak-ng)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the clips exist")
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest)
    config = load_config(None, "video-retalking", overrides.get("config_files") or (), overrides)
    start_command(config)
    from talkingface.data.sample import make_sample_set

    for path in make_sample_set(config["dataset_root"], force=args.force):
        print(path)
    return EXIT_OK


#: command -> its one line in ``python -m talkingface --help``
SUBCOMMANDS: dict[str, str] = {
    "run": "generate a dataset subset with a model, evaluate it, write a run folder (the default command)",
    "infer": "re-dub one clip: --face clip.mp4 --audio speech.wav --outfile out.mp4",
    "evaluate": "score any videos: LSE-C/LSE-D, FID, PSNR/SSIM (--generated, --reference)",
    "checkpoints": "official weight files: list | verify | download",
    "sample": "rebuild the bundled sample set (needs espeak-ng)",
}
COMMANDS: dict[str, Callable[[list[str]], int]] = {"run": _run, "checkpoints": _checkpoints, "sample": _sample}
INTERRUPTED = {
    "infer": "interrupted: no output was written; the stages already done for this clip are cached "
             "(saved_dir/cache), so the same command continues from there",
    "evaluate": "interrupted: finished clip scores are saved in the result folder; run the same command "
                "(same --run_dir) again to resume",
    "checkpoints": "interrupted: a partial download is kept as <file>.part; the same command resumes it",
    "sample": "interrupted: run the same command again",
}


def top_help() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: python -m talkingface <command> [--key=value ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in SUBCOMMANDS.items()]
    lines += ["", "`python -m talkingface <command> --help` describes a command; every config key works on "
                  "every command as --key=value (`python -m talkingface run --help` lists them).",
              "No command, or options first, means `run`."]
    return "\n".join(lines)


def module_main(argv: Sequence[str] | None = None) -> int:
    """``python -m talkingface <command>``; no command (or options first) means ``run``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["-h"], ["--help"], ["help"]):
        print(top_help())
        return EXIT_OK
    if argv and argv[0] in ("evaluate", "infer"):
        import importlib

        module = importlib.import_module(f"talkingface.commands.{argv[0]}")
        return guarded(module.main, argv[1:], INTERRUPTED[argv[0]])
    if argv and not argv[0].startswith("-"):
        command = COMMANDS.get(argv[0])
        if command is None:
            print(f"error: unknown command {argv[0]!r}\n  -> commands: {', '.join(SUBCOMMANDS)} "
                  "(python -m talkingface --help)", file=sys.stderr)
            return EXIT_USER
        return guarded(command, argv[1:], INTERRUPTED.get(argv[0], BATCH_INTERRUPTED))
    return guarded(_run, argv)
