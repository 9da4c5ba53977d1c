"""Console (colorlog) + run.log logging, set up once per command."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_file_handler: logging.Handler | None = None


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        if getattr(handler, "_talkingface", False) and handler is not _file_handler:
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


def log_to_file(path: str | Path) -> None:
    """Mirror everything (DEBUG and up) into ``run.log`` of the run folder."""
    global _file_handler
    root = logging.getLogger()
    if _file_handler is not None:
        root.removeHandler(_file_handler)
        _file_handler.close()
    _file_handler = logging.FileHandler(path, encoding="utf-8")
    _file_handler.setFormatter(logging.Formatter(FORMAT))
    _file_handler.setLevel(logging.DEBUG)
    _file_handler._talkingface = True  # type: ignore[attr-defined]
    root.addHandler(_file_handler)


def close_file_log() -> None:
    global _file_handler
    if _file_handler is not None:
        logging.getLogger().removeHandler(_file_handler)
        _file_handler.close()
        _file_handler = None
