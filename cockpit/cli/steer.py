"""`cockpit stop / pause / continue / set-lr`: steer a live run through its commands table."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Optional

import typer

from cockpit.core.asking import ask
from engine.contracts import Command, CommandError, Continue, Pause, SetLR, Stop
from engine.store import ACTIVE_STATES, Run, pid_alive

from .common import RunArg, RunsDirOpt, console, fail, open_run


TimeoutOpt = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait for the worker's answer; a command "
                          "not taken by then is withdrawn and never executed.")


def stop(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt,
         wait: bool = typer.Option(True, help="Wait until the worker has stopped (--no-wait: the stop stays "
                                   "queued until the worker reads it)."),
         timeout: float = TimeoutOpt) -> None:
    """Ask a running run to stop cleanly at the next step boundary."""
    send(run_ref, runs_dir, Stop(reason="cockpit stop"), wait, timeout)


def pause(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt, timeout: float = TimeoutOpt) -> None:
    """Pause a running run (the worker keeps the model in memory)."""
    send(run_ref, runs_dir, Pause(), True, timeout)


def continue_(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt, timeout: float = TimeoutOpt) -> None:
    """Continue a paused run."""
    send(run_ref, runs_dir, Continue(), True, timeout)


def set_lr(run_ref: str = RunArg,
           lr: float = typer.Argument(..., help="New base learning rate (the schedule's shape carries on)."),
           layer: Optional[str] = typer.Option(None, help="Change this param group's multiplier instead."),
           runs_dir: Optional[Path] = RunsDirOpt, timeout: float = TimeoutOpt) -> None:
    """Change the learning rate of a live run; logged as an event."""
    try:
        command = SetLR(layer=layer, mult=lr) if layer else SetLR(lr=lr)
    except ValueError as exc:  # pydantic says which value and why
        fail(f"the learning rate must be a finite number > 0, got {lr:g}" if "finite" in str(exc) else str(exc))
    send(run_ref, runs_dir, command, True, timeout)


def send(run_ref: str, runs_dir: Optional[Path], command: Command, wait: bool, timeout: float = 60.0) -> None:
    """Write the command for the run's worker and (unless `wait` is off) print its answer; one not
    answered within `timeout` seconds is withdrawn (never executed) and exits 1 saying why."""
    kind = command.kind
    r = open_run(run_ref, runs_dir)
    state = r.reap()
    if state not in ACTIVE_STATES:
        fail(f"run {r.run_id} is {state}; commands go to live runs only")
    if not wait:
        try:
            r.send_command(command, source="cli")
        except CommandError as exc:
            fail(str(exc))
        console.print(f"sent {kind} to {r.run_id}")
        return
    try:
        answer = ask(r, command, "cli", timeout)
    except CommandError as exc:
        fail(str(exc))
    if answer.status != "done":
        fail(f"{kind}: {answer.reply}", code=1)
    console.print(f"{kind}: {answer.reply or 'done'}")
    if kind == "stop":  # returns once the worker has exited: its claim is free, `resume` works at once
        deadline = time.monotonic() + 60
        while (r.reap() in ACTIVE_STATES or worker_alive(r)) and time.monotonic() < deadline:
            time.sleep(0.1)
        console.print(f"{r.run_id} is {r.state()}")


def worker_alive(r: Run) -> bool:
    """Whether the run's recorded worker process (on this host) still runs."""
    meta = r.meta()
    return bool(meta.get("pid")) and meta.get("host") == socket.gethostname() and pid_alive(int(meta["pid"]), meta.get("pid_start"))


COMMANDS = {"stop": stop, "pause": pause, "continue": continue_, "set-lr": set_lr}
