"""`cockpit run / resume / attach`: start a run (or continue one from its checkpoint) in a worker
process and watch it live; Ctrl+C (or SIGTERM) stops it cleanly, twice at once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Optional

import typer

from cockpit.core.launch import LaunchError, Layout, create_run, start_worker
from cockpit.core.resume import resume as resume_run
from engine.contracts import Stop
from engine.launch import signal_ranks
from engine.store import ACTIVE_STATES, Run, StoreError

from .complete import complete_preset
from .common import RunArg, RunsDirOpt, SetOpt, console, err, fail, open_run, resolve_spec, runs_dir_or_default
from .live import final_table, watch


def run(
    preset: Optional[str] = typer.Argument(None, help="Preset file or name (default: the embedded quickstart).",
                                           autocompletion=complete_preset),
    sets: list[str] = SetOpt,
    runs_dir: Optional[Path] = RunsDirOpt,
    detach: bool = typer.Option(False, "--detach", "-d", help="Start the run and return; `cockpit attach` watches it."),
    nproc_per_node: int = typer.Option(1, "--nproc-per-node", min=1, help="Data-parallel processes on this node "
                                       "(one per GPU; gloo on CPU), started through torchrun."),
    nnodes: int = typer.Option(1, "--nnodes", min=1, help="Nodes in the job (run the same command on each)."),
    rdzv_endpoint: str = typer.Option("", "--rdzv-endpoint", metavar="HOST:PORT",
                                      help="torchrun rendezvous address, the same on every node (needed with --nnodes > 1)."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="SyncBatchNorm across the processes (CUDA only)."),
) -> None:
    """Run a preset headless in a worker process and watch it live."""
    spec, label = resolve_spec(preset, sets)
    layout = Layout(nproc_per_node, nnodes, rdzv_endpoint, sync_bn)
    try:
        r = create_run(runs_dir_or_default(runs_dir), spec, label, layout)
    except (LaunchError, ValueError, StoreError) as exc:
        fail(str(exc))
    _start_and_watch(r, detach, layout)


def resume(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt,
           detach: bool = typer.Option(False, "--detach", "-d", help="Resume and return.")) -> None:
    """Continue a stopped, crashed or failed run from its last good checkpoint (same run id)."""
    r = open_run(run_ref, runs_dir)
    try:
        proc = resume_run(r, "CLI")
    except StoreError as exc:  # another live worker has it, or it cannot be resumed: nothing changed
        fail(str(exc))
    _watch(r, proc, detach)


def attach(run_ref: str = RunArg, runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Watch a run live (Ctrl+C detaches; the run keeps going)."""
    r = open_run(run_ref, runs_dir)
    try:
        state = watch(r, console, None)
    except KeyboardInterrupt:  # Ctrl+C before the view's own loop took over
        state = r.state()
    if state in ACTIVE_STATES:  # Ctrl+C: the run goes on, so no final table for it yet
        console.print(f"detached; {r.run_id} is still {'starting' if state == 'created' else state} "
                      f"(cockpit attach {r.run_id})", highlight=False, soft_wrap=True)
        return
    _summary(r)


def _start_and_watch(r: Run, detach: bool, layout: Layout) -> None:
    """Spawn the new run's worker; unless detached, watch it to its end."""
    try:
        proc = start_worker(r, layout)
    except StoreError as exc:
        fail(str(exc))
    _watch(r, proc, detach)


def _watch(r: Run, proc, detach: bool) -> None:
    """Unless detached, watch the run's worker to its end: the summary, the report, the exit code."""
    if detach:
        console.print(f"started [bold]{r.run_id}[/] (pid {proc.pid}); watch with: cockpit attach {r.run_id}")
        return
    with _Signals() as signals:  # from here to the summary, a signal is handled, never raised
        _watch_until_done(r, proc, signals)
        state = r.state()
        meta = r.meta()
        if state == "failed" and meta.get("error_kind") == "usage":  # a spec or data problem: just say what to fix
            fail(f"{meta.get('error')}\n(recorded as failed run {r.run_id}; log: {r.log_path})")
        _summary(r)
        _write_report(r)
    if state == "stopped":
        raise typer.Exit(signals.code())
    if state in ("failed", "crashed"):
        raise typer.Exit(1)


class _Signals:
    """SIGINT and SIGTERM while `cockpit run` watches: recorded, never raised, so a second signal
    can never cut the first one's handling or the summary short; the exit code is the first's."""

    CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.previous: dict = {}

    def __call__(self, signum: int, _frame) -> None:
        self.seen.append(signum)

    def __enter__(self) -> _Signals:
        self.previous = {s: signal.signal(s, self) for s in self.CODES}
        return self

    def __exit__(self, *_exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def code(self) -> int:
        return self.CODES.get(self.seen[0], 130) if self.seen else 130


def _watch_until_done(r: Run, proc, signals: _Signals) -> None:
    """Watch the run while its worker lives: the first signal stops it at the next step boundary,
    a second at once (also while the worker is writing its last checkpoint)."""
    killed = []

    def on_interrupt(n: int) -> bool:
        if n == 1:
            r.send_command(Stop(reason="SIGTERM" if signals.seen[0] == signal.SIGTERM else "Ctrl+C"), source="cli")
            err.print("[yellow]stopping at the next step boundary (Ctrl+C again to stop at once)[/]")
            return True
        err.print("[red]stopping now[/]")
        signal_ranks(r)  # torchrun: each rank's second signal exits it at once
        kill_now(proc.pid)
        killed.append(True)
        return False

    watch(r, console, on_interrupt, signals=lambda: len(signals.seen))
    while proc.poll() is None:
        if len(signals.seen) > 1 and not killed:
            on_interrupt(2)
        time.sleep(0.05)


def _write_report(r: Run) -> None:
    try:
        from cockpit.report import write_report

        console.print(f"report: {write_report(r)[0]}")
    except Exception as exc:  # a report never turns a run into a failure
        err.print(f"[yellow]report not written:[/] {exc}")


def kill_now(pid: int) -> None:
    """Second interrupt: the worker's second signal exits at once; SIGKILL if it lingers."""
    for _ in range(2):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def _summary(r: Run) -> None:
    meta = r.meta()
    console.print(final_table(r))
    if meta.get("error"):
        err.print(f"[bold red]{meta['state']}:[/] {meta['error']}  (log: {r.log_path})")
    console.print(f"run dir: {r.path}")


COMMANDS = {"run": run, "resume": resume, "attach": attach}
