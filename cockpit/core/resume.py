"""Resuming a run (same run id, from its last good checkpoint) and deleting one: the checks and
steps that the CLI and the TUI's runs list share, torch-free."""

from __future__ import annotations

import shutil
import subprocess

from engine.launch import mark_for_resume
from engine.spec import SpecError
from engine.store import ACTIVE_STATES, Run, RunClaim, StoreError

from .launch import start_worker


class ResumeRefused(StoreError):
    """A run that cannot be resumed now; the message says why (CLI: exit 2)."""


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


def resume(run: Run, source: str) -> subprocess.Popen:
    """Continue the run in a new worker with the layout it was started with. Everything happens
    under the run's claim, taken first and handed to the worker, so of two resumes at once exactly
    one starts a worker: the other gets ClaimHeld naming it. ResumeRefused says why a run cannot be
    resumed; either way a refused run is left as it was."""
    claim = RunClaim.take(run.path)
    try:
        reason = why_not_resume(run)
        if reason:
            raise ResumeRefused(reason)
        mark_for_resume(run, f"resume requested from the {source}")
        return start_worker(run, None, claim)
    finally:
        claim.release()


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
