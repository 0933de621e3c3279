"""What `sweep resume` does with a requeued trial's run, decided from the run store alone: a worker
that still runs is adopted, a run that ended on its own is recorded, a stopped one continues, one
that never had a worker gets one; only a run with nothing to continue from is replaced."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from engine.spec import RunSpec
from engine.store import Run
from engine.sweep.takeover import Adopted, takeover


def _run(runs_dir, name, checkpoint=False, **meta) -> Run:
    run = Run.create(runs_dir, RunSpec(name=name))
    run.set_meta(**meta)
    if checkpoint:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        (run.checkpoints / "last.pt").write_bytes(b"")
    return run


def test_each_requeued_run_is_taken_up_by_what_its_store_says(tmp_path):
    runs = tmp_path / "runs"
    here = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cases = {
        "never started": (_run(runs, "a", state="created"), "start"),
        "live worker": (_run(runs, "b", state="running", pid=os.getpid(), host=here), "adopt"),
        "paused worker": (_run(runs, "c", state="paused", pid=os.getpid(), host=here), "adopt"),
        "finished": (_run(runs, "d", state="finished", pid=dead.pid, host=here), "record"),
        "failed": (_run(runs, "e", state="failed", pid=dead.pid, host=here), "record"),
        "pruned, then stopped": (_run(runs, "f", True, state="stopped", sweep_outcome="pruned"), "record"),
        "stopped by Ctrl+C": (_run(runs, "g", True, state="stopped", sweep_outcome="interrupted"), "continue"),
        "worker died": (_run(runs, "h", True, state="running", pid=dead.pid, host=here), "continue"),
        "died before a checkpoint": (_run(runs, "i", state="running", pid=dead.pid, host=here), "new"),
    }
    for what, (run, want) in cases.items():
        assert takeover(run) == want, what
    assert cases["worker died"][0].state() == "crashed"  # recorded as the store records a dead worker
    live = Adopted(cases["live worker"][0], poll_s=0.01)
    assert live.poll() is None and live.pid == os.getpid()
    cases["live worker"][0].set_meta(state="finished")
    assert live.poll() == 0 and live.wait() == 0
