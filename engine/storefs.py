"""The run store's edges on the filesystem: claiming a run id atomically, opening a store this
process cannot write, and saying in one line why a run.db cannot be used (damaged, full disk).

Kept apart from engine/store.py, which is about what a run holds; this module is about where it
lives and what the disk does to it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

MAX_CLAIMS = 1000  # ids tried per second-stamp before giving up (each try is one mkdir)


def id_base(name: str, now: datetime | None = None) -> str:
    """20261127-231900-sgd_cosine: ids sort by time and read well."""
    return f"{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}-{name}"


def claim_run_id(name: str, runs_dir: Path, now: datetime | None = None) -> str:
    """Claim the first free id (base, base-2, base-3, ...) by making its folder: mkdir is atomic,
    so two launches in the same second never get the same id. The folder stays empty until the
    finished run is renamed onto it (a listing skips a folder without run.db)."""
    base = id_base(name, now)
    for n in range(1, MAX_CLAIMS + 1):
        run_id = base if n == 1 else f"{base}-{n}"
        try:
            os.mkdir(runs_dir / run_id)
        except FileExistsError:
            continue
        return run_id
    raise OSError(errno.EEXIST, f"{MAX_CLAIMS} runs named {base} already exist")


def scratch_dir(runs_dir: Path, run_id: str) -> Path:
    """A folder of this process's own to build the run in (unique even for the same id)."""
    return Path(tempfile.mkdtemp(prefix=f".{run_id}.", suffix=".tmp", dir=runs_dir))


def writable(path: Path) -> bool:
    """Whether this process can write the run dir and its run.db (False on a read-only mount, a
    chmod a-w copy for a non-root user, a colleague's runs dir)."""
    db = Path(path) / "run.db"
    return os.access(path, os.W_OK) and (not db.exists() or os.access(db, os.W_OK))


def readonly_uri(db_path: Path, immutable: bool) -> str:
    """SQLite URI that can never change the file; `immutable` also skips the -shm/-wal files, for
    a WAL store in a folder nobody may create them in (an archive on a read-only mount)."""
    return f"file:{Path(db_path).resolve().as_posix()}?mode=ro" + ("&immutable=1" if immutable else "")


def disk_full(exc: BaseException) -> bool:
    """Whether an error is the disk (or a quota) being full: ENOSPC/EDQUOT or SQLITE_FULL."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def describe(exc: BaseException, where: Path) -> str:
    """One line for an error from the disk or SQLite: what happened, and where."""
    if disk_full(exc):
        return f"the disk is full at {where} (free some space and try again)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({where})"
    return f"{exc} ({where})"


def damage(exc: BaseException, db_path: Path) -> str:
    """Why a run.db could not be read, in words a user can act on."""
    try:
        size = db_path.stat().st_size
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if size == 0:
        return "is empty (0 bytes): not a run store"
    text = str(exc)
    if "no such table" in text:
        return f"is not a run store ({text})"
    if isinstance(exc, ValueError):
        return f"holds meta values that are not JSON ({text})"
    return f"is damaged ({text})"
