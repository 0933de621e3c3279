"""What the worker is doing before its first step, written to the run store for every viewer.

From launch to the first step a run can take 10-15 s or more (the worker starts, imports torch,
decodes 60,000 JPEGs or downloads CIFAR, builds and compiles the model). `Phases` records each
phase as meta `phase` ({name, detail, done, total, since}) and, the first time each phase is
entered, a `phase` event (so reports put them on the timeline; loading the test split after the
model was begun adds none); progress within a phase (done/total) goes to meta at most every
`every_s` seconds. Torch-free: the worker makes one before it imports torch.
"""

from __future__ import annotations

import time
from typing import Any

from .store import Run

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

    def progress(self, detail: str, done: int, total: int) -> None:
        """The data loading's progress (setup.build's callback) moves the phase along."""
        self.set(LOADING, detail.strip(), done, total)
        if done >= total:  # this count is over: the model is built next, unless another count starts
            self.set(BUILDING)

