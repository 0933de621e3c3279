"""Resuming a run (same run id, from its last good checkpoint) and deleting one: the checks and
steps that the CLI and the TUI's runs list share, torch-free."""

from __future__ import annotations

import shutil
import subprocess

from engine.spec import SpecError
from engine.store import ACTIVE_STATES, Run, StoreError

from .launch import start_worker


def why_not_resume(run: Run) -> str | None:
    """Why this run cannot be resumed, or None (reaps a run whose worker is gone first)."""
    state = run.reap()
    if state in ACTIVE_STATES:
        return f"run {run.run_id} is {state}; only a stopped, crashed or failed run can be resumed"
    if state == "finished":
        return f"run {run.run_id} has finished; start a new run with a larger train.epochs instead"
    if not (run.checkpoints / "last.pt").exists() and not (run.checkpoints / "last.prev.pt").exists():
        return f"run {run.run_id} has no checkpoint to resume from (looked in {run.checkpoints})"
    try:
        run.spec()  # checked before anything is written: a run that cannot resume keeps its state
    except (StoreError, SpecError) as exc:
        return str(exc)
    return None


def prepare_resume(run: Run, source: str) -> None:
    """Mark the run for resuming (its worker then loads the last checkpoint), logged as an event."""
    state = run.state()
    run.set_meta(resume=True, state="created", error="")
    run.add_event("resume_requested", f"resume requested from the {source} (was {state})", step=run.last_step())


def resume(run: Run, source: str) -> subprocess.Popen:
    """Mark the run for resuming and start its worker with the layout it was started with."""
    prepare_resume(run, source)
    return start_worker(run, None)


def why_not_delete(run: Run) -> str | None:
    state = run.reap()
    if state in ACTIVE_STATES:
        return f"run {run.run_id} is {state}: stop it first (s on its dashboard, or cockpit stop)"
    return None


def delete(run: Run) -> None:
    """Remove the run's directory (the caller has asked the user first)."""
    path = run.path
    run.close()
    shutil.rmtree(path)
