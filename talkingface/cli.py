"""Command line: ``run_talkingface.py`` and ``python -m talkingface <command>``.

Only the dispatch lives here: command name -> its module in
:mod:`talkingface.commands`, the top-level ``--help``, and one policy for every
command's errors and exit code. Exit codes, the same on every command: 0 done;
2 a user error (one paragraph on stderr: what, where, what to do; tracebacks only
with ``--debug``); 3 the batch finished but some items failed or were not done
(the table lists them); 130 interrupted; 1 a bug.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from talkingface.commands import checkpoints, evaluate, infer, run, sample
from talkingface.commands.common import debug_requested, set_debug
from talkingface.config import parse_cli_value
from talkingface.errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_OK, EXIT_USER, TalkingFaceError

BATCH_INTERRUPTED = "interrupted: finished items are saved; run the same command again to resume"

#: command -> (its module's ``main``, its one line in ``python -m talkingface --help``, what Ctrl-C leaves)
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str, str]] = {
    "run": (run.main, "generate a dataset subset with a model, evaluate it, write a run folder (the default command)",
            BATCH_INTERRUPTED),
    "infer": (infer.main, "re-dub one clip: --face clip.mp4 --audio speech.wav --outfile out.mp4",
              "interrupted: no output was written; the stages already done for this clip are cached "
              "(saved_dir/cache), so the same command continues from there"),
    "evaluate": (evaluate.main, "score any videos: LSE-C/LSE-D, FID, PSNR/SSIM (--generated, --reference)",
                 "interrupted: finished clip scores are saved in the result folder; run the same command "
                 "(same --run_dir) again to resume"),
    "checkpoints": (checkpoints.main, "official weight files: list | verify | download",
                    "interrupted: a partial download is kept as <file>.part; the same command resumes it"),
    "sample": (sample.main, "rebuild the bundled sample set (needs espeak-ng)",
               "interrupted: run the same command again"),
}


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


def guarded(func: Callable[[list[str]], int], argv: Sequence[str], interrupted: str = BATCH_INTERRUPTED) -> int:
    """Run a command; user errors -> 2, failed items -> 3, interrupts -> 130, bugs -> 1."""
    set_debug(wants_debug(argv))
    try:
        return func(list(argv))
    except TalkingFaceError as exc:
        if debug_requested():
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  -> {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so plainly, keep the traceback for --debug
        if debug_requested():
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n  -> run again with --debug for the traceback "
              "and report it", file=sys.stderr)
        return EXIT_BUG


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of run_talkingface.py: the ``run`` command."""
    return guarded(run.main, sys.argv[1:] if argv is None else argv)


def top_help() -> str:
    """``python -m talkingface --help``: the commands, one line each."""
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m talkingface <command> [--key=value ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text, _) in COMMANDS.items()]
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
    if not argv or argv[0].startswith("-"):
        return guarded(run.main, argv)
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n  -> commands: {', '.join(COMMANDS)} "
              "(python -m talkingface --help)", file=sys.stderr)
        return EXIT_USER
    func, _, interrupted = COMMANDS[argv[0]]
    return guarded(func, argv[1:], interrupted)
