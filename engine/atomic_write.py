"""Atomic file writes: a temp file in the same folder, fsynced, then renamed over the target.

A reader sees the old file or the new one, never half of one; a crash leaves at most a temp file
named `.NAME.tmp-PID`, which `clean_temp_files` removes. When a write fails, `disk_full` and
`describe` say whether the disk was full and what happened, in one line. Torch-free, so the cockpit
can use it too.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path
from typing import BinaryIO, Callable

TEMP_GLOB = ".*.tmp-*"
LOW_SPACE = 1 << 20  # bytes free below which a vague write error is read as a full disk


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: some filesystems cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path | str, write: Callable[[BinaryIO], object],
                 before_rename: Callable[[], object] | None = None) -> Path:
    """Write `path` through `write(file)`: temp file, flush, fsync, `before_rename()`, rename, fsync
    the folder. Any error removes the temp file and propagates; the old `path` is then untouched."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def clean_temp_files(folder: Path | str) -> list[Path]:
    """Remove temp files left by a crash mid-write (never a finished file)."""
    stale = list(Path(folder).glob(TEMP_GLOB))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def disk_full(exc: BaseException, where: Path | None = None) -> bool:
    """Whether an error is the disk (or a quota) being full: ENOSPC/EDQUOT, SQLITE_FULL, or an
    error that says less (SQLite's "disk I/O error", torch.save's "unexpected pos") while the
    filesystem at `where` has almost no space left."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
        return True
    if where is None or not isinstance(exc, (OSError, sqlite3.Error, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(where).free < LOW_SPACE
    except OSError:
        return False


def describe(exc: BaseException, where: Path) -> str:
    """One line for an error from the disk or SQLite: what happened, and where."""
    if disk_full(exc, where):
        return f"the disk is full at {where} (free some space and try again)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({where})"
    return f"{exc} ({where})"
