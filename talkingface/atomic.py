"""Write-then-rename helpers: a file either exists complete or not at all; safe file names.

A killed run must never leave a half-written video or JSON that a resumed run
would mistake for a finished result.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from talkingface.errors import OutputError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(text: str, max_length: int | None = None, *, strip: bool = False) -> str:
    """``text`` (a clip id, a video name) usable as a file name on every OS: each run of other characters
    becomes one ``_`` (LRS2 ids contain ``/``); ``strip`` drops leading/trailing ``_``; at most
    ``max_length`` characters; ``"clip"`` when nothing is left."""
    safe = _UNSAFE.sub("_", text)
    if strip:
        safe = safe.strip("_")
    if max_length is not None:
        safe = safe[:max_length]
    return safe or "clip"


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _output_error(target: Path, exc: OSError) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = f"free disk space on the drive of {target.parent} (finished results are kept; re-run to resume)"
    else:
        hint = f"make {target.parent} writable or choose another folder (e.g. --saved_dir=...)"
    return OutputError(f"cannot write {target}: {exc.strerror or exc}", hint=hint)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename onto it only if the block succeeds."""
    target = Path(target)
    suffix = target.suffix if suffix is None else suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp" + suffix, dir=target.parent)
    except OSError as exc:
        if exc.errno in _WRITE_ERRNOS:
            raise _output_error(target, exc) from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results should be readable like any file
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        # disk full while writing the body, or the rename refused: a clear error, no partial file
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise _output_error(target, exc) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def atomic_write_json(target: str | Path, data: Any) -> Path:
    return atomic_write_text(target, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
