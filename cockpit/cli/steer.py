"""`cockpit stop / pause / continue / set-lr`: steer a live run through its commands table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from engine.contracts import Command, CommandError, Continue, Pause, SetLR, Stop
from engine.store import ACTIVE_STATES

from .common import RunArg, RunsDirOpt, console, fail, open_run


def stop(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt,
         wait: bool = typer.Option(True, help="Wait until the worker has stopped.")) -> None:
    """Ask a running run to stop cleanly at the next step boundary."""
    send(run_ref, runs_dir, Stop(reason="cockpit stop"), wait)


def pause(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Pause a running run (the worker keeps the model in memory)."""
    send(run_ref, runs_dir, Pause(), True)


def continue_(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Continue a paused run."""
    send(run_ref, runs_dir, Continue(), True)


def set_lr(run_ref: str = RunArg,
           lr: float = typer.Argument(..., help="New base learning rate (the schedule's shape carries on)."),
           layer: Optional[str] = typer.Option(None, help="Change this param group's multiplier instead."),
           runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Change the learning rate of a live run; logged as an event."""
    try:
        command = SetLR(layer=layer, mult=lr) if layer else SetLR(lr=lr)
    except ValueError as exc:  # pydantic says which value and why
        fail(f"the learning rate must be a finite number > 0, got {lr:g}" if "finite" in str(exc) else str(exc))
    send(run_ref, runs_dir, command, True)


def send(run_ref: str, runs_dir: Optional[Path], command: Command, wait: bool) -> None:
    """Write the command for the run's worker and (unless `wait` is off) print its answer."""
    kind = command.kind
    r = open_run(run_ref, runs_dir)
    state = r.reap()
    if state not in ACTIVE_STATES:
        fail(f"run {r.run_id} is {state}; commands go to live runs only")
    try:
        cid = r.send_command(command, source="cli")
    except CommandError as exc:
        fail(str(exc))
    if not wait:
        console.print(f"sent {kind} to {r.run_id}")
        return
    row = r.wait_command(cid, timeout=60)
    if row is None or row["status"] == "pending":
        fail(f"{kind}: no answer from {r.run_id} within 60 s (is the worker busy?)", code=1)
    if row["status"] == "failed":
        fail(f"{kind}: {row['reply']}", code=1)
    console.print(f"{kind}: {row['reply'] or 'done'}")
    if kind == "stop":
        deadline = time.monotonic() + 60
        while r.reap() in ACTIVE_STATES and time.monotonic() < deadline:
            time.sleep(0.1)
        console.print(f"{r.run_id} is {r.state()}")


COMMANDS = {"stop": stop, "pause": pause, "continue": continue_, "set-lr": set_lr}
