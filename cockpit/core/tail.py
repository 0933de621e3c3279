"""Follow a run from its store: new metric rows, events and state, for any viewer.

Both the headless live view and the TUI read a run through `RunTail.poll()`; it never imports
torch. A viewer that follows a run owns noticing that its worker is gone: `poll()` reaps the run
(marks it crashed), the one write it makes.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from engine.store import ACTIVE_STATES, Run, ShownState, shown_state

SERIES_POINTS = 2000  # points kept per metric in memory; sparklines show the tail


@dataclass
class Snapshot:
    """What a viewer draws: latest values, series, recent events, and progress."""

    state: str = "created"
    meta: dict[str, Any] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    step: int = 0
    epoch: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return int(self.meta.get("total_steps") or 0)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def shown(self) -> ShownState:
        """The state as a view shows it: `not responding` while a live run's worker is silent."""
        return shown_state(self.state, self.meta)


class RunTail:
    """Incremental reader of one run: call `poll()` as often as you like (it reads only new rows)."""

    def __init__(self, run: Run, max_points: int = SERIES_POINTS, max_events: int = 200):
        self.run = run
        self.series: dict[str, deque[tuple[int, float]]] = defaultdict(lambda: deque(maxlen=max_points))
        self.events: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.snapshot = Snapshot()
        self._metric_id = 0
        self._event_id = 0
        self._rate: deque[tuple[float, int]] = deque(maxlen=30)  # (worker wall, step) of recent windows
        self.fresh: dict[str, list[tuple[int, float]]] = {}  # the points the last poll read, per metric

    def poll(self) -> Snapshot:
        snap = self.snapshot
        snap.state = self.run.reap()
        snap.meta = self.run.meta()
        self._metric_id, rows = self.run.metrics_since(self._metric_id)
        self.fresh = fresh = defaultdict(list)
        for m in rows:
            if m.value is not None:
                self.series[m.name].append((m.step, m.value))
                fresh[m.name].append((m.step, m.value))
                snap.last[m.name] = m.value
            if m.step >= snap.step:
                snap.step, snap.epoch = m.step, m.epoch
            if m.name == "lr":  # one per window: the rate on the worker's own clock
                self._rate.append((m.wall, m.step))
        for r in self.run.events_since(self._event_id):
            self._event_id = r["id"]
            self.events.append(dict(r))
        snap.events = list(self.events)
        return snap

    @property
    def event_id(self) -> int:
        """The id of the newest event read so far."""
        return self._event_id

    @property
    def last_metric_id(self) -> int:
        """The id of the newest metric row read so far (grows when new rows arrive)."""
        return self._metric_id

    def values(self, name: str, n: int | None = None) -> list[float]:
        pts = self.series.get(name, ())
        vals = [v for _, v in pts]
        return vals[-n:] if n else vals

    def eta_seconds(self) -> float | None:
        """Remaining time from the rate of the recent windows, timed by the worker's clock (so a
        viewer that has just attached, or polls irregularly, still gets the real rate)."""
        total = self.snapshot.total_steps
        if len(self._rate) < 2 or not total:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return (total - s1) * (t1 - t0) / (s1 - s0)
