"""Errors a user can act on.

Every error that reaches the command line derives from :class:`TalkingFaceError`
so the CLI can print one paragraph (what is wrong, where, what to do) and exit
with a stable code instead of a traceback.
"""
from __future__ import annotations

#: Exit codes of every command (README "Exit codes"): done, a bug, a user error (the default of
#: :attr:`TalkingFaceError.exit_code`), a batch with failed items, interrupted.
EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_ITEMS_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class TalkingFaceError(Exception):
    """An error caused by the user's input or environment, not by a bug."""

    exit_code: int = EXIT_USER

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  -> {hint}")


class ConfigError(TalkingFaceError):
    """A config file, key or value is wrong."""


class RegistryError(TalkingFaceError):
    """An unknown model / dataset / metric name."""


class InputMediaError(TalkingFaceError):
    """A video or audio file cannot be used."""


class DatasetError(TalkingFaceError):
    """A dataset root, split or subset is missing or empty."""


class CheckpointError(TalkingFaceError):
    """A checkpoint file is missing, corrupt, or does not fit the module."""


class NoFaceError(InputMediaError):
    """No usable face was found where one is needed."""


class OutputError(TalkingFaceError):
    """An output cannot be written (read-only folder, disk full)."""
