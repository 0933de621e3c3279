"""The run store's edges on the filesystem: claiming a run id atomically (rename or retry), opening a store this
process cannot write, telling a dead launch's leftovers from a live one's (`pid_alive`), and saying in one
line why a run.db cannot be used (damaged, full disk).

Kept apart from engine/store.py, which is about what a run holds; this module is about where it
lives and what the disk does to it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Callable

LOW_SPACE = 1 << 20  # bytes free below which a vague write error is read as a full disk
MAX_CLAIMS = 1000  # renames tried before giving up (each lost race moves to the next id)


def id_base(name: str, now: datetime | None = None) -> str:
    """20261127-231900-sgd_cosine: ids sort by time and read well."""
    return f"{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}-{name}"


def free_id(base: str, runs_dir: Path) -> str:
    """The first of base, base-2, base-3, ... that names nothing in runs_dir yet (a guess: `place`
    makes it sure)."""
    run_id, n = base, 1
    while (runs_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def place(tmp: Path, runs_dir: Path, run_id: str, base: str, relabel: Callable[[str], None]) -> str:
    """Rename the finished run folder `tmp` to runs_dir/run_id; when another launch took that id
    first, `relabel(next_id)` and try the next free one after `base`. rename(2) onto an existing
    run (never an empty folder) fails, so two launches never share an id, and a listing never sees
    a half-made run."""
    for _ in range(MAX_CLAIMS):
        try:
            os.rename(tmp, runs_dir / run_id)
            return run_id
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
        run_id = free_id(base, runs_dir)
        relabel(run_id)
    raise OSError(errno.EEXIST, f"{MAX_CLAIMS} launches raced for the id {base}; try again")


def scratch_dir(runs_dir: Path, name: str) -> Path:
    """A folder of this process's own to build the run in (unique even for the same name; made
    with the umask's permissions, as the run dir will keep them, not mkdtemp's 0700)."""
    for _ in range(100):
        tmp = runs_dir / f".{name[:64]}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.mkdir(tmp)
            return tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "no free temp folder name", str(runs_dir))


def clean_stale(runs_dir: Path) -> list[Path]:
    """Remove the temp folders of launches that died mid-creation (their pid is gone); returns them."""
    stale = []
    for tmp in runs_dir.glob(".*.tmp"):
        parts = tmp.name.rsplit(".", 3)  # .<name>.<pid>.<hex>.tmp
        if len(parts) == 4 and parts[1].isdigit() and not pid_alive(int(parts[1])):
            shutil.rmtree(tmp, ignore_errors=True)
            stale.append(tmp)
    return stale


def pid_alive(pid: int) -> bool:
    """Whether process `pid` on this host still runs (a zombie, exited but not yet reaped, is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def writable(path: Path) -> bool:
    """Whether this process can write the run dir and its run.db (False on a read-only mount, a
    chmod a-w copy for a non-root user, a colleague's runs dir)."""
    db = Path(path) / "run.db"
    return os.access(path, os.W_OK) and (not db.exists() or os.access(db, os.W_OK))


def readonly_uri(db_path: Path, immutable: bool) -> str:
    """SQLite URI that can never change the file; `immutable` also skips the -shm/-wal files, for
    a WAL store in a folder nobody may create them in (an archive on a read-only mount)."""
    return f"file:{Path(db_path).resolve().as_posix()}?mode=ro" + ("&immutable=1" if immutable else "")


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
