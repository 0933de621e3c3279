"""Taking up a trial again (`sweep resume`) without running any seed twice.

A trial is queued again when its sweep process stopped watching it: Ctrl+C (its run was stopped
cleanly) or a sweep process that died (`kill -9`, a lost SSH session), whose worker runs on in its
own process session and may since have finished. So the trial's own run decides what happens:

    no worker ever started       start its worker (the sweep died between making the run and starting it)
    its worker still runs        adopt it: watch the run until it ends, start nothing
    it ended on its own          record it from the run (finished, failed, or pruned), start nothing
    it stopped or crashed        continue it from last.pt (the same run, the same seed)
    no run, or no checkpoint     a new run

Whether a worker runs is the store's answer (`Run.reap`: its recorded state, and its process on this
host), the one every view gives.
"""

from __future__ import annotations

import time
from typing import Literal

from ..store import ACTIVE_STATES, Run

Takeover = Literal["start", "adopt", "record", "continue", "new"]
ENDED_ON_ITS_OWN = ("finished", "failed")  # a verdict of the run itself: running it again changes nothing
NOTE = {"start": " (made before the sweep process stopped: its worker starts now)",
        "adopt": " (its worker still runs: adopted)",
        "record": " (it ended while no sweep watched it: recorded from its run, not run again)",
        "continue": " (continued from its checkpoint)", "new": ""}


def takeover(run: Run) -> Takeover:
    """What `sweep resume` does with a requeued trial's run."""
    meta = run.meta()
    if meta.get("state", "created") == "created" and not meta.get("pid"):
        return "start"
    state = run.reap()
    if state in ACTIVE_STATES:
        return "adopt"
    if state in ENDED_ON_ITS_OWN or run.meta().get("sweep_outcome") == "pruned":
        return "record"
    return "continue" if (run.checkpoints / "last.pt").exists() else "new"


class Adopted:
    """A worker this sweep process did not start, watched through its run store as a child process
    is through Popen (`poll`, `wait`, `pid`): it has ended once its run is no longer active."""

    def __init__(self, run: Run, poll_s: float = 0.2):
        self.run, self.poll_s = run, poll_s
        self.pid = int(run.meta().get("pid") or 0)

    def poll(self) -> int | None:
        return 0 if self.run.reap() not in ACTIVE_STATES else None

    def wait(self) -> int:
        while self.poll() is None:
            time.sleep(self.poll_s)
        return 0
