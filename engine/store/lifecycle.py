"""A run's meta and events: its recorded state, how a viewer should read it (a run whose worker is
gone is crashed; one whose worker is silent is `not responding`), and recording that (`reap`).
Reading never writes.

Meta keys of a run's liveness: `pid` and `pid_start` (the worker's pid and its start token, see
process.py: a reused pid is not the worker), `host`, and `heartbeat` (the wall time of the worker's
last beat, or of its spawn; liveness.py)."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Callable, Final, Literal, Mapping, Union, Unpack, cast

from .db import RunDB
from .liveness import not_responding_after, silent_for
from .process import pid_alive

if TYPE_CHECKING:  # the store imports no pydantic at run time
    from ..contracts import RunMeta, RunState

ACTIVE_STATES: tuple[RunState, ...] = ("created", "running", "paused")
# what a view shows instead of an active state while the worker is silent: a display value, never
# recorded (the run is still running or paused; it reads so again as soon as it beats)
NotResponding = Literal["not responding"]
NOT_RESPONDING: Final[NotResponding] = "not responding"
ShownState = Union["RunState", NotResponding]

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
            if not pid_alive(int(meta["pid"]), meta.get("pid_start")):  # gone, or its pid reused since
                # the worker may have just finished: re-read before declaring a crash
                state = self.meta().get("state", state)
                return "crashed" if state in ACTIVE_STATES else state
        return state

    def shown_state(self) -> ShownState:
        """The state a view shows: `observed_state`, or `not responding` for a live run whose worker
        has been silent too long."""
        return shown_state(self.observed_state(), self.meta())

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


def shown_state(state: str, meta: Mapping[str, Any], now: float | None = None) -> ShownState:
    """`state` (a run's state as read) as a view shows it: `not responding` where the run is live
    (running, paused, or created with a worker spawned) and its worker has not beaten for longer
    than `not_responding_after()` seconds; `state` otherwise."""
    live = state in ("running", "paused") or (state == "created" and bool(meta.get("pid")))
    silent = silent_for(meta, now) if live else None
    if silent is not None and silent > not_responding_after():
        return NOT_RESPONDING
    return state  # type: ignore[return-value]  # a RunState, as read from the store
