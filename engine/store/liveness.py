"""Whether a live run's worker still responds: the heartbeat it writes from a thread of its own.

A worker can be alive and still never answer: stopped (`kill -STOP`), swapped out, stuck in a driver
call. Its pid cannot tell, so the worker beats: a thread that waits on nothing of training writes
meta `heartbeat` (the wall time) every `beat_every()` seconds. A live run whose last beat (or, before
the first, its spawn) is older than `not_responding_after()` seconds is shown `not responding`
(engine.store.lifecycle.shown_state) until it beats again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from .db import connect

NOT_RESPONDING_ENV = "COCKPIT_NOT_RESPONDING_S"  # tests (and impatient users) shorten the limit
NOT_RESPONDING_S = 30.0  # a live run silent for longer than this is `not responding`
BEAT_S = 2.0  # how often a worker beats (more often when the limit is shorter)


def not_responding_after() -> float:
    """Seconds of silence after which a live run reads `not responding` (COCKPIT_NOT_RESPONDING_S
    overrides the 30 s; an unusable value keeps it)."""
    try:
        limit = float(os.environ.get(NOT_RESPONDING_ENV, "") or NOT_RESPONDING_S)
    except ValueError:
        return NOT_RESPONDING_S
    return limit if limit > 0 and limit == limit and limit != float("inf") else NOT_RESPONDING_S


def beat_every() -> float:
    """Seconds between two beats: several beats fit in the limit, so one late beat is no alarm."""
    return min(BEAT_S, not_responding_after() / 5)


def silent_for(meta: dict, now: float | None = None) -> float | None:
    """Seconds since the run's worker last beat (meta `heartbeat`: its beat, or its spawn); None
    when the run records no heartbeat (a run from before heartbeats, or never spawned)."""
    beat = meta.get("heartbeat")
    if not isinstance(beat, (int, float)) or isinstance(beat, bool):
        return None
    return max(0.0, (time.time() if now is None else now) - float(beat))


class Heartbeat:
    """The worker's beat: a daemon thread with its own run.db connection, so nothing in training
    (a long step, an evaluation, compiling, a held GIL-free kernel) delays it; only a stopped or
    frozen process stops it. A failed write (a full disk, a busy store) is retried at the next beat."""

    def __init__(self, run_dir: Path):
        self.db_path = Path(run_dir) / "run.db"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._con = connect(self.db_path)  # the thread's own (the connection allows another thread)
        self._write(self._con)  # the first beat before this returns: no gap after a spawn
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(beat_every()):
                self._write(self._con)
        finally:
            self._con.close()

    @staticmethod
    def _write(con: sqlite3.Connection) -> None:
        try:
            con.execute("INSERT INTO meta VALUES ('heartbeat', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        (json.dumps(time.time()),))
        except (sqlite3.Error, OSError):
            pass
