"""Console (colorlog) + run.log logging, set up once per command."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        if getattr(handler, "_talkingface", False) and not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    color = sys.stderr.isatty() and not os.environ.get("TALKINGFACE_NO_COLOR")
    try:
        import colorlog

        formatter: logging.Formatter = colorlog.ColoredFormatter(
            "%(log_color)s%(levelname)-7s%(reset)s %(message)s", no_color=not color,
            log_colors={"DEBUG": "cyan", "INFO": "green", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold_red"})
    except ImportError:  # pragma: no cover - colorlog is a pinned requirement
        formatter = logging.Formatter("%(levelname)-7s %(message)s")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    console.setLevel(level)
    console._talkingface = True  # type: ignore[attr-defined]
    root.addHandler(console)
    for noisy in ("numba", "matplotlib", "PIL", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def log_to_file(path: str | Path) -> Iterator[logging.Handler]:
    """Mirror everything (DEBUG and up) into ``run.log`` of the run folder while the block runs.

    The handler belongs to the command (or run) that opened it: it is removed and
    closed when the block ends, however it ends, so a second run in the same
    process (a notebook, the tests, a Ray driver) never writes into the first one's log.
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(logging.DEBUG)
    handler._talkingface = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.close()
