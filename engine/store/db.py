"""run.db itself: its schema, its connections (read-only where asked or where the store cannot be
written) and the transactions a run's writes go through.

Every connection sets a busy timeout, so a reader never crashes or blocks the writer for long.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import layout
from ..errors import UsageError

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, epoch REAL NOT NULL,
    name TEXT NOT NULL, value REAL, wall REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_name_step ON metrics (name, step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, step INTEGER NOT NULL,
    kind TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, kind TEXT NOT NULL, args TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'pending',
    acked_wall REAL, reply TEXT NOT NULL DEFAULT '', deadline REAL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, step INTEGER NOT NULL, kind TEXT NOT NULL,
    checkpoint TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}');
"""


class StoreError(UsageError):
    """A run that cannot be found or opened; the message says which and why (CLI: exit 2)."""


def connect(db_path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to run.db; `readonly` opens it with SQLite's mode=ro (works on a store this
    process cannot write, and can never change it). Nothing here writes: a read-only store opens."""
    if readonly:
        con = _open(layout.readonly_uri(db_path, immutable=False), uri=True)
        try:
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # a WAL store without its -shm file, in a folder this process cannot create it in
            con.close()
            if layout.writable(Path(db_path).parent):
                raise
            con = _open(layout.readonly_uri(db_path, immutable=True), uri=True)
        return con
    con = _open(db_path)
    # WAL + NORMAL: a commit survives a crash of any process (nothing lost on kill -9); only a power
    # cut can drop the last commits, never corrupt the file. FULL would fsync on every metric read.
    con.execute("PRAGMA synchronous = NORMAL")
    return con


def _open(target: Path | str, uri: bool = False) -> sqlite3.Connection:
    con = sqlite3.connect(target, timeout=10.0, isolation_level=None, check_same_thread=False, uri=uri)
    con.execute("PRAGMA busy_timeout = 10000")
    con.row_factory = sqlite3.Row
    return con


class RunDB:
    """A run's connection to its run.db, opened on first use; the base of `engine.store.Run`, which
    sets `path`, `db_path` and `readonly`."""

    path: Path
    db_path: Path
    readonly: bool
    _con: sqlite3.Connection | None = None

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = connect(self.db_path, readonly=self.readonly)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic WAL commit (the connection is in autocommit mode outside of these)."""
        if self.readonly:
            raise StoreError(f"{self.path} is read-only here: this needs to write to the run store")
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


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
