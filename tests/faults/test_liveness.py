"""Liveness you can believe: a frozen worker reads `not responding` everywhere until it beats again,
a command its client gave up on never runs, and a pid reused by another process is not the worker."""

from __future__ import annotations

import json
import os
import signal

import pytest

from cockpit.cli.live import render
from cockpit.core.tail import RunTail
from engine.store import NOT_RESPONDING, Run, process_start

from ..conftest import TINY_SETS, cockpit
from .test_crashes import start_detached, steps, wait_for

LONG = [*TINY_SETS, "train.epochs=500"]


def listed(run: Run) -> dict:
    [row] = [json.loads(line) for line in cockpit("runs", "--json").stdout.splitlines()]
    return row


def command_rows(run: Run, kind: str) -> list:
    return run.con.execute("SELECT status, reply FROM commands WHERE kind = ?", (kind,)).fetchall()


@pytest.mark.slow
def test_a_frozen_worker_is_not_responding_and_a_command_it_missed_never_runs(runs_dir, monkeypatch):
    monkeypatch.setenv("COCKPIT_NOT_RESPONDING_S", "2")
    run = start_detached(runs_dir, LONG)
    wait_for(lambda: len(steps(run)) > 3, what="training")
    assert listed(run)["state"] == "running"
    pid = run.meta()["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: run.shown_state() == NOT_RESPONDING, 15, "the heartbeat to go stale")
        row = listed(run)
        assert row["state"] == NOT_RESPONDING and row["responding"] is False and row["silent_s"] > 2
        assert f"{run.run_id} is {NOT_RESPONDING}: no heartbeat for " in cockpit("runs").stdout
        tail = RunTail(run)
        tail.poll()
        assert NOT_RESPONDING in render(tail).renderables[0].plain  # attach's head
        assert cockpit("report", run.run_id, "--format", "json").returncode == 0
        assert json.loads((run.path / "report.json").read_text())["run"]["state"] == NOT_RESPONDING
        res = cockpit("set-lr", run.run_id, "0.5", "--timeout", "2")
        assert res.returncode == 1, res.stdout
        assert "is not responding" in res.stderr and "never be executed" in res.stderr, res.stderr
        assert [r["status"] for r in command_rows(run, "set_lr")] == ["expired"]
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: run.shown_state() == "running", 15, "a beat again")
    before = len(steps(run))
    wait_for(lambda: len(steps(run)) > before + 4, 60, "training to go on (the worker reads its commands)")
    assert [r["status"] for r in command_rows(run, "set_lr")] == ["expired"]
    assert not [e for e in run.events_since() if e["kind"] == "set_lr"], "the withdrawn set-lr never ran"
    assert listed(run)["state"] == "running"
    res = cockpit("stop", run.run_id)
    assert res.returncode == 0 and run.state() == "stopped", res.stderr

    # the pid recorded for a live run now names another process (a reboot, pid reuse): crashed, resumable
    run.set_meta(state="running", pid=os.getpid(), pid_start=f"not {process_start(os.getpid())}")
    assert listed(run)["state"] == "crashed"
    res = cockpit("resume", run.run_id, "--detach")
    assert res.returncode == 0, res.stderr
    before = len(steps(run))
    wait_for(lambda: len(steps(run)) > before, 60, "the resumed run to train")
    assert cockpit("stop", run.run_id).returncode == 0
