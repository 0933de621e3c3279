"""Where a run lives on disk: claiming a run id atomically (rename or retry), the scratch folders
of launches that died mid-creation, and opening a store this process cannot write."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Callable

from .process import pid_alive

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


def writable(path: Path) -> bool:
    """Whether this process can write the run dir and its run.db (False on a read-only mount, a
    chmod a-w copy for a non-root user, a colleague's runs dir)."""
    db = Path(path) / "run.db"
    return os.access(path, os.W_OK) and (not db.exists() or os.access(db, os.W_OK))


def readonly_uri(db_path: Path, immutable: bool) -> str:
    """SQLite URI that can never change the file; `immutable` also skips the -shm/-wal files, for
    a WAL store in a folder nobody may create them in (an archive on a read-only mount)."""
    return f"file:{Path(db_path).resolve().as_posix()}?mode=ro" + ("&immutable=1" if immutable else "")
