"""Asking a live run's worker to do something and waiting for its answer, with a deadline.

The command carries the client's deadline into the store. When it passes unanswered, the client
withdraws the command (marks it expired), so a frozen worker that wakes up later never executes
it; the answer then says whether the run is not responding (no heartbeat) or only busy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from typing import TYPE_CHECKING
from engine.store import ACTIVE_STATES, ANSWERED, NOT_RESPONDING, Run, shown_state, silent_for

if TYPE_CHECKING:
    from engine.contracts import Command


@dataclass(frozen=True)
class Answer:
    """How a command ended: done or failed (the worker's reply), expired (never executed: the
    reply says why), or unanswered (the run ended before the worker read it)."""

    status: str
    reply: str


def ask(run: Run, command: Command, source: str, timeout: float) -> Answer:
    """Send `command` and wait up to `timeout` seconds for the worker's answer."""
    cid = run.send_command(command, source=source, deadline=time.time() + timeout)
    row = run.wait_command(cid, timeout)
    if row is None or row["status"] not in ANSWERED:
        if run.observed_state() not in ACTIVE_STATES:
            return Answer("unanswered", f"the run is {run.observed_state()}")
        reply = withdrawn_reason(run, command.kind, timeout)
        if run.expire_command(cid, reply):
            return Answer("expired", reply)
        row = run.wait_command(cid, timeout)  # taken at the last moment: it runs, so wait for its answer
        if row is None or row["status"] not in ANSWERED:
            return Answer("unanswered", f"the worker took {command.kind} but has not answered within {timeout:g} s more")
    return Answer(row["status"], row["reply"])


def withdrawn_reason(run: Run, kind: str, timeout: float) -> str:
    """Why a command got no answer in time, and what became of it."""
    meta = run.meta()
    if shown_state(run.observed_state(), meta) == NOT_RESPONDING:
        return (f"run {run.run_id} is not responding (no heartbeat for {silent_for(meta) or 0:.0f} s); {kind} was "
                f"withdrawn and will never be executed. If it stays frozen: kill -9 {meta.get('pid')}, then "
                f"`cockpit resume {run.run_id}`")
    return (f"no answer from {run.run_id} within {timeout:g} s, though its worker is alive (busy?); {kind} was "
            "withdrawn and will never be executed")
