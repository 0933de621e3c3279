"""Background jobs the TUI starts for a run: send it a command, export its report, run a finishing
pass in a child process (torch stays out of the TUI). Each runs in a Textual thread worker and reports back through
notifications; nothing here blocks the event loop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from textual.app import App

from cockpit.core.passes import PassOutcome, PassProcess, start_pass
from engine.contracts import Command
from engine.store import Run


COMMAND_DEADLINE_S = 60.0  # a command the worker has not taken by then is never executed (a frozen run)


def send_command(app: App, path: Path, command: Command, sent: Callable[[int], None]) -> None:
    """Write a command into the run's commands table (in a thread); `sent(command id)` from that
    thread. Not taken by the worker within COMMAND_DEADLINE_S, it expires unexecuted."""
    kind = command.kind

    def write() -> None:
        try:
            run = Run(path)
            try:
                cid = run.send_command(command, source="tui", deadline=time.time() + COMMAND_DEADLINE_S)
            finally:
                run.close()
        except Exception as exc:
            app.call_from_thread(app.notify, f"{kind}: cannot send ({exc})", severity="error")
            return
        sent(cid)

    app.run_worker(write, thread=True, group="commands", exit_on_error=False)
    args = command.model_dump(exclude={"kind"}, exclude_none=True)
    app.notify(f"sent {kind}" + (f" {args}" if args else ""), timeout=2)


def export_report(app: App, path: Path) -> None:
    """Write the run's report files beside it (html, svg, md, json) and say where they went."""

    def export() -> None:
        from cockpit.report import write_report  # loaded only when asked for

        try:
            run = Run(path, readonly=True)
        except Exception as exc:
            app.call_from_thread(app.notify, f"report failed: {exc}", severity="error", timeout=10)
            return
        try:
            t0 = time.monotonic()
            paths = write_report(run)
            took = time.monotonic() - t0
        except Exception as exc:
            app.call_from_thread(app.notify, f"report failed: {type(exc).__name__}: {exc}", severity="error",
                                 timeout=10)
            return
        finally:
            run.close()
        names = ", ".join(p.name for p in paths)
        folder = paths[0].parent if paths else path
        app.call_from_thread(app.notify, f"{names} in {folder} ({took:.1f} s)", title="report written", timeout=10)

    app.notify("writing the report…", timeout=2)
    app.run_worker(export, thread=True, group="report", exit_on_error=False)


def run_pass(app: App, kind: str, path: Path, done: Callable[[PassOutcome], None]) -> PassProcess:
    """Run `cockpit <kind> RUN_DIR` in a child process, checked twice a second on the event loop (no
    thread waits on it, so quitting never hangs); `done(outcome)` when it ends."""
    job = start_pass(kind, path)

    def check() -> None:
        outcome = job.poll()
        if outcome is not None:
            timer.stop()
            done(outcome)

    timer = app.set_interval(0.5, check)
    return job
