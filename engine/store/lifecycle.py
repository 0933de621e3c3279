"""A run's meta and events: its recorded state, how a viewer should read it (a run whose worker is
gone is crashed), and recording that (`reap`). Reading never writes."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Callable, Unpack, cast

from .db import RunDB
from .process import pid_alive

if TYPE_CHECKING:  # the store imports no pydantic at run time
    from ..contracts import RunMeta, RunState

ACTIVE_STATES: tuple[RunState, ...] = ("created", "running", "paused")

WORKER_GONE = "worker process disappeared"
NEVER_STARTED = "no worker ever started for this run"
NEVER_STARTED_S = 60.0  # a run still `created` with no pid after this long was abandoned by its launch


class RunLifecycle(RunDB):
    """A run's meta, state and events (a part of `engine.store.Run`, whose RunSeries gives
    `last_step`: a crash is recorded at the last step written)."""

    last_step: Callable[[], int]

    def meta(self) -> RunMeta:
        """The run's meta (engine.contracts.RunMeta: every key a run may hold, each typed)."""
        return cast("RunMeta", {r["key"]: json.loads(r["value"]) for r in self.con.execute("SELECT key, value FROM meta")})

    def set_meta(self, **values: Unpack[RunMeta]) -> None:
        with self.transaction():
            self.con.executemany(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def state(self) -> str:
        """The run's state as recorded (reading never writes: `reap()` marks a dead worker's run)."""
        return self.meta().get("state", "created")

    def observed_state(self) -> str:
        """The state as a viewer should show it: an active run whose worker on this host is gone reads
        as crashed (nothing is written; `reap()` records it)."""
        meta = self.meta()
        state = meta.get("state", "created")
        if state == "created" and not meta.get("pid") and time.time() - float(meta.get("created") or 0) > NEVER_STARTED_S:
            return "crashed"  # made, but no worker ever took it (a launch that died, a full disk)
        if state in ACTIVE_STATES and meta.get("pid") and meta.get("host") == socket.gethostname():
            if not pid_alive(int(meta["pid"])):
                # the worker may have just finished: re-read before declaring a crash
                state = self.meta().get("state", state)
                return "crashed" if state in ACTIVE_STATES else state
        return state

    def reap(self) -> str:
        """The run's state, after marking it crashed if its worker on this host is gone (never left
        running). Made by the commands that own it (runs listing, attach, resume, the TUI); a
        read-only store is left as it is."""
        state = self.observed_state()
        if state == "crashed" and not self.readonly and self.state() in ACTIVE_STATES:
            why = WORKER_GONE if self.meta().get("pid") else NEVER_STARTED
            self.set_meta(state="crashed", ended=time.time(), error=why)
            self.add_event("crashed", why, level="error", step=self.last_step())
        return state

    def add_event(self, kind: str, message: str, *, level: str = "info", step: int = 0, **data: Any) -> None:
        with self.transaction():
            self.con.execute(
                "INSERT INTO events (wall, step, kind, level, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), step, kind, level, message, json.dumps(data)),
            )

    def events_since(self, after_id: int = 0) -> list[sqlite3.Row]:
        return self.con.execute("SELECT * FROM events WHERE id > ? ORDER BY id", (after_id,)).fetchall()
