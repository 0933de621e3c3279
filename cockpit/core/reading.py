"""One poll of a watched run, as an immutable value: what the TUI's poll thread hands to the screen.

`RunReader` owns the run's `RunTail` and is used from one thread only; each `read()` returns a
`Reading` made of fresh copies (read-only mappings and tuples), so the UI never touches a
structure the reader is still changing.
"""

from __future__ import annotations

import threading
import time

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from engine.store import ACTIVE_STATES, ANSWERED, Run, ShownState, StoreError, StoredResult, shown_state

from .asking import withdrawn_reason
from .selection import Selection, choose
from .tail import RunTail

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class CommandAnswer:
    """The worker's answer to a command sent from this viewer."""

    cid: int
    kind: str
    status: str  # done | failed | expired (withdrawn at its deadline, never executed) | unanswered
    reply: str


@dataclass(frozen=True)
class Reading:
    """What one poll of the run store found (made in a thread, applied on the event loop)."""

    state: str
    new_rows: bool
    new_events: bool
    meta: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    step: int = 0
    last: Mapping[str, float] = field(default_factory=lambda: EMPTY)  # the latest value of every metric
    # every metric's recent values (filled when new_rows)
    series: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: EMPTY)
    # the (step, value) points read by this poll, per metric (a chart keeps the whole run from them)
    points: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=lambda: EMPTY)
    events: tuple[Mapping[str, Any], ...] = ()  # the recent events, oldest first
    results: tuple[StoredResult, ...] = ()  # new finishing-pass results (frozen rows)
    answers: tuple[CommandAnswer, ...] = ()
    eta: float | None = None  # seconds left, from the worker's own timestamps
    selected: Selection | None = None  # best.pt's evaluation (filled when new_rows)
    error: str = ""
    damaged: bool = False  # the error is a damaged store (StoreError), not a passing one (a locked database)
    source: int = 0  # which reader made it (a reading for a run no longer watched is dropped)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def shown(self) -> ShownState:
        """The state as a view shows it: `not responding` while a live run's worker is silent."""
        return shown_state(self.state, dict(self.meta))


class RunReader:
    """Reads one run for a viewer: new metric rows, events, results and command answers."""

    SKIP_RESULTS = ("hardest",)  # shown in reports, not among the finishing passes

    def __init__(self, run: Run):
        self.run = run
        self.tail = RunTail(run)
        self._result_id = 0
        self._first = True
        self._unsent: dict[str, list[tuple[int, float]]] = {}  # points read but not yet in a Reading
        # a poll thread reads while the UI thread may close: SQLite must never see both at once
        self._lock = threading.Lock()
        self._closed = False

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def read(self, pending: Mapping[int, str] = EMPTY) -> Reading:
        """Poll the store once; `pending` maps command ids sent from this viewer to their kinds."""
        with self._lock:
            if self._closed:
                return Reading("", False, False, error="the viewer closed this run", source=id(self))
            return self._read(pending)

    def _read(self, pending: Mapping[int, str]) -> Reading:
        tail = self.tail
        try:
            before, events_before = tail.last_metric_id, tail.event_id
            try:
                snap = tail.poll()
            finally:  # the points read are kept until a Reading carries them (a failed read loses none)
                for name, pts in tail.fresh.items():
                    self._unsent.setdefault(name, []).extend(pts)
                tail.fresh = {}
            new_rows = tail.last_metric_id != before or self._first
            new_events = tail.event_id != events_before or self._first
            self._first = False
            series = {n: tuple(tail.values(n)) for n in tail.series} if new_rows else {}
            points = {n: tuple(pts) for n, pts in self._unsent.items()}
            reading = Reading(
                snap.state, new_rows, new_events, MappingProxyType(dict(snap.meta)), snap.step,
                MappingProxyType(dict(snap.last)), MappingProxyType(series), MappingProxyType(points),
                tuple(MappingProxyType(e) for e in snap.events), self._new_results(),
                self._answers(pending, snap.state), tail.eta_seconds() if snap.active else None,
                choose(tail.series.get("test_acc", ()), tail.series.get("val_acc", ())) if new_rows else None,
                source=id(self))
            self._unsent = {}
            return reading
        except StoreError as exc:  # damaged (a text value among the metrics...): what `runs` lists as unreadable
            return Reading("", False, False, error=str(exc), damaged=True, source=id(self))
        except Exception as exc:  # a locked or vanished store must not take the UI down
            return Reading("", False, False, error=f"{type(exc).__name__}: {exc}", source=id(self))

    def _new_results(self) -> tuple[StoredResult, ...]:
        rows = self.run.results(after_id=self._result_id)
        if rows:
            self._result_id = rows[-1].id
        return tuple(r for r in rows if r.kind not in self.SKIP_RESULTS)

    def _answers(self, pending: Mapping[int, str], state: str) -> tuple[CommandAnswer, ...]:
        answers = []
        for cid, kind in pending.items():
            row = self.run.command(cid)
            if row is not None and row["status"] in ANSWERED:
                answers.append(CommandAnswer(cid, kind, row["status"], row["reply"]))
            elif state not in ACTIVE_STATES:
                answers.append(CommandAnswer(cid, kind, "unanswered", f"the run is {state}"))
            elif row is not None and _deadline(row) <= time.time() and not self.run.readonly:
                # past its deadline and not taken: withdrawn here, so a frozen worker that wakes never runs it
                reply = withdrawn_reason(self.run, kind, _deadline(row) - row["wall"])
                if self.run.expire_command(cid, reply):
                    answers.append(CommandAnswer(cid, kind, "expired", reply))
        return tuple(answers)

    def close(self) -> None:
        """Close the connection once no read is in flight (a read after this returns an error Reading)."""
        with self._lock:
            self._closed = True
            self.run.close()


def _deadline(row) -> float:
    """A command row's deadline (wall time); infinite where it has none (or run.db predates deadlines)."""
    value = row["deadline"] if "deadline" in row.keys() else None
    return float(value) if value is not None else float("inf")
