"""What the worker is doing before its first step, written to the run store for every viewer.

From launch to the first step a run can take 10-15 s or more (the worker starts, imports torch,
decodes 60,000 JPEGs or downloads CIFAR, builds and compiles the model). `Phases` records each
phase as meta `phase` ({name, detail, done, total, since}) and, the first time each phase is
entered, a `phase` event (so reports put them on the timeline; loading the test split after the
model was begun adds none); progress within a phase (done/total) goes to meta at most every
`every_s` seconds. Torch-free: the worker makes one before it imports torch.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .store import Run

# the data loaders' progress, as setup.build logs it: "decoding train/: 12800/50000"
PROGRESS_LINE = re.compile(r"^(?P<detail>[^:]+): (?P<done>\d+)/(?P<total>\d+)$")

STARTING, IMPORTING, LOADING, BUILDING, FIRST_STEP, COMPILING = (
    "starting", "importing torch", "loading data", "building the model", "first step", "compiling (first step)")


class Phases:
    """Phase changes and progress to the run store (nothing where `run` is None: not the writer)."""

    def __init__(self, run: Run | None, every_s: float = 0.5):
        self.run, self.every_s = run, every_s
        self.name = ""
        self._written = self._since = 0.0
        self._seen: set[str] = set()  # phases with an event already

    def set(self, name: str, detail: str = "", done: int | None = None, total: int | None = None) -> None:
        """Enter phase `name` (an event when it is a new phase), or report progress within it."""
        if self.run is None:
            return
        now = time.time()
        changed = name != self.name
        if not changed and done != total and now - self._written < self.every_s:
            return  # progress is throttled; the end of a count always gets written
        if changed:
            self._since = now
        phase: dict[str, Any] = {"name": name, "detail": detail, "done": done, "total": total, "since": self._since}
        self.run.set_meta(phase=phase)
        self._written = now
        self.name = name
        if name not in self._seen:
            self._seen.add(name)
            self.run.add_event("phase", name + (f": {detail}" if detail else ""), step=0)

    def log_line(self, message: str) -> None:
        """A line of the worker's log: a data-loading progress line moves the phase along."""
        m = PROGRESS_LINE.match(message.strip()) if self.name else None
        if m is None:
            return
        done, total = int(m["done"]), int(m["total"])
        self.set(LOADING, m["detail"].strip(), done, total)
        if done >= total:  # this count is over: the model is built next, unless another count starts
            self.set(BUILDING)

    def end(self) -> None:
        """Training has begun: log lines are no longer read as phases (the sink clears meta `phase`
        with the first metrics it writes)."""
        self.name = ""

