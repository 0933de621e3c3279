"""The `cockpit` command: the TUI with no subcommand, headless runs and run tools as subcommands.

Exit codes: 0 done, 1 the run failed, 2 usage errors (bad preset, bad --set, unknown run),
130 stopped with Ctrl+C.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from engine.spec import SpecError, dump_spec, load_spec, spec_schema
from engine.store import ACTIVE_STATES, RUNS_ENV, Run, StoreError, default_runs_dir, iter_runs, resolve_run

from . import __version__
from .presets import DEFAULT_PRESET, find_preset

app = typer.Typer(
    help="Training Cockpit: train image classifiers from the terminal. Run with no command to open the TUI.",
    add_completion=False, no_args_is_help=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
spec_app = typer.Typer(help="Check presets and print the spec schema.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")

console = Console()
err = Console(stderr=True)

RunsDirOpt = typer.Option(None, "--runs-dir", envvar=RUNS_ENV, help="Where runs live (default ./runs).",
                          show_default=False)
SetOpt = typer.Option([], "--set", "-s", help="Override a spec field: KEY=VALUE, e.g. optim.lr=0.1 (repeatable).")


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def resolve_spec(preset: Optional[str], sets: list[str]):
    """(spec, preset label) or exit 2 with every problem listed."""
    try:
        if preset is None:
            return load_spec(None, sets), DEFAULT_PRESET
        path = find_preset(preset)
        return load_spec(path, sets), str(path)
    except SpecError as exc:
        fail(str(exc))


def open_run(ref: str, runs_dir: Optional[Path]) -> Run:
    try:
        return resolve_run(ref, runs_dir)
    except StoreError as exc:
        fail(str(exc))


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    runs_dir: Optional[Path] = RunsDirOpt,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Open the TUI's editor on this preset."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """Open the TUI when no command is given."""
    if version:
        console.print(f"training-cockpit {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        if preset is not None:
            resolve_spec(preset, [])  # a bad preset exits 2 here, before the screen is taken over
        from .app import CockpitApp

        CockpitApp(runs_dir=runs_dir or default_runs_dir(), preset=preset).run()


# --------------------------------------------------------------------------------------- run


@app.command()
def run(
    preset: Optional[str] = typer.Argument(None, help="Preset file or name (default: the embedded quickstart)."),
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
    world = nproc_per_node * nnodes
    if nnodes > 1 and not rdzv_endpoint:
        fail("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
    if rdzv_endpoint:
        from engine.worker import split_endpoint

        try:
            split_endpoint(rdzv_endpoint)
        except ValueError as exc:
            fail(str(exc))
    if spec.train.batch_size % world:
        fail(f"train.batch_size={spec.train.batch_size} is the global batch and must divide by the {world} "
             f"processes (--nproc-per-node x --nnodes); use a multiple of {world}")
    if sync_bn and world == 1:
        fail("--sync-bn needs several processes (--nproc-per-node or --nnodes > 1)")
    try:
        r = Run.create(runs_dir or default_runs_dir(), spec, preset=label)
    except StoreError as exc:
        fail(str(exc))
    if world > 1:
        r.set_meta(sync_bn=sync_bn)
    _start_and_watch(r, detach, nproc_per_node=nproc_per_node, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)


def _start_and_watch(r: Run, detach: bool, **layout) -> None:
    """Spawn the worker (under torchrun for several processes; `layout` as in `engine.worker.spawn`,
    from meta when left out); unless detached, watch it: Ctrl+C (or SIGTERM) stops it cleanly, twice at once."""
    from engine.worker import signal_ranks, spawn

    proc = spawn(r, **layout)
    if detach:
        console.print(f"started [bold]{r.run_id}[/] (pid {proc.pid}); watch with: cockpit attach {r.run_id}")
        return
    exit_code = {"code": 130}

    def on_interrupt(n: int) -> bool:
        if n == 1:
            r.send_command("stop", source="cli", reason="Ctrl+C" if exit_code["code"] == 130 else "SIGTERM")
            err.print("[yellow]stopping at the next step boundary (Ctrl+C again to stop at once)[/]")
            return True
        err.print("[red]stopping now[/]")
        signal_ranks(r)  # torchrun: each rank's second signal exits it at once
        kill_now(proc.pid)
        return False

    def on_sigterm(_signum, _frame) -> None:
        exit_code["code"] = 143
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        _watch(r, on_interrupt)
        proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    state = r.state()
    meta = r.meta()
    if state == "failed" and meta.get("error_kind") == "usage":  # a spec or data problem: just say what to fix
        fail(f"{meta.get('error')}\n(recorded as failed run {r.run_id}; log: {r.log_path})")
    _summary(r)
    try:
        from .report import write_report

        console.print(f"report: {write_report(r)[0]}")
    except Exception as exc:  # a report never turns a run into a failure
        err.print(f"[yellow]report not written:[/] {exc}")
    if state == "stopped":
        raise typer.Exit(exit_code["code"])
    if state in ("failed", "crashed"):
        raise typer.Exit(1)


@app.command()
def resume(run_ref: str = typer.Argument(..., metavar="RUN", help="Run id, id prefix, 'last', or run dir."),
           runs_dir: Optional[Path] = RunsDirOpt,
           detach: bool = typer.Option(False, "--detach", "-d", help="Resume and return.")) -> None:
    """Continue a stopped, crashed or failed run from its last good checkpoint (same run id)."""
    r = open_run(run_ref, runs_dir)
    state = r.state()
    if state in ACTIVE_STATES:
        fail(f"run {r.run_id} is {state}; only a stopped, crashed or failed run can be resumed")
    if state == "finished":
        fail(f"run {r.run_id} has finished; start a new run with a larger train.epochs instead")
    last = r.checkpoints / "last.pt"
    if not last.exists() and not (r.checkpoints / "last.prev.pt").exists():
        fail(f"run {r.run_id} has no checkpoint to resume from (looked in {r.checkpoints})")
    r.set_meta(resume=True, state="created", error="")
    r.add_event("resume_requested", f"resume requested from the CLI (was {state})", step=r.last_step())
    _start_and_watch(r, detach)


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


def _watch(r: Run, on_interrupt) -> str:
    from .live import watch

    return watch(r, console, on_interrupt)


def _summary(r: Run) -> None:
    from .live import final_table

    meta = r.meta()
    console.print(final_table(r))
    if meta.get("error"):
        err.print(f"[bold red]{meta['state']}:[/] {meta['error']}  (log: {r.log_path})")
    console.print(f"run dir: {r.path}")


@app.command()
def attach(run_ref: str = typer.Argument(..., metavar="RUN", help="Run id, id prefix, 'last', or run dir."),
           runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Watch a run live (Ctrl+C detaches; the run keeps going)."""
    r = open_run(run_ref, runs_dir)
    _watch(r, None)
    _summary(r)


@app.command()
def stop(run_ref: str = typer.Argument(..., metavar="RUN"), runs_dir: Optional[Path] = RunsDirOpt,
         wait: bool = typer.Option(True, help="Wait until the worker has stopped.")) -> None:
    """Ask a running run to stop cleanly at the next step boundary."""
    _command(run_ref, runs_dir, "stop", wait, reason="cockpit stop")


@app.command()
def pause(run_ref: str = typer.Argument(..., metavar="RUN"), runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Pause a running run (the worker keeps the model in memory)."""
    _command(run_ref, runs_dir, "pause", True)


@app.command(name="continue")
def continue_(run_ref: str = typer.Argument(..., metavar="RUN"), runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Continue a paused run."""
    _command(run_ref, runs_dir, "resume", True)


@app.command(name="set-lr")
def set_lr(run_ref: str = typer.Argument(..., metavar="RUN"),
           lr: float = typer.Argument(..., help="New base learning rate (the schedule's shape carries on)."),
           layer: Optional[str] = typer.Option(None, help="Change this param group's multiplier instead."),
           runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Change the learning rate of a live run; logged as an event."""
    if lr <= 0:
        fail("the learning rate must be > 0")
    args = {"mult": lr, "layer": layer} if layer else {"lr": lr}
    _command(run_ref, runs_dir, "set_lr", True, **args)


def _command(run_ref: str, runs_dir: Optional[Path], kind: str, wait: bool, **args) -> None:
    r = open_run(run_ref, runs_dir)
    state = r.state()
    if state not in ACTIVE_STATES:
        fail(f"run {r.run_id} is {state}; commands go to live runs only")
    cid = r.send_command(kind, source="cli", **args)
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
        while r.state() in ACTIVE_STATES and time.monotonic() < deadline:
            time.sleep(0.1)
        console.print(f"{r.run_id} is {r.state()}")


# -------------------------------------------------------------------------------------- runs


def fmt_time(ts: Optional[float], short: bool = False) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S") if ts else ""


@app.command()
def runs(runs_dir: Optional[Path] = RunsDirOpt,
         as_json: bool = typer.Option(False, "--json", help="One JSON object per run, for scripts.")) -> None:
    """List runs: state, preset, best accuracy, start time."""
    rows = []
    for r in iter_runs(runs_dir):
        meta = r.meta()
        rows.append({
            "run_id": r.run_id, "state": r.state(), "preset": meta.get("preset", ""),
            "best_acc": r.best("test_acc"), "started": meta.get("started") or meta.get("created"),
            "path": str(r.path),
        })
        r.close()
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    if not rows:
        console.print(f"no runs in {runs_dir or default_runs_dir()}")
        return
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("run", no_wrap=True)  # the id is what the other commands take: never cut it
    for col, just in (("state", "left"), ("preset", "left"), ("best acc", "right"), ("started", "left")):
        table.add_column(col, justify=just, no_wrap=True, min_width=11 if col == "started" else None)
    from .live import STATE_STYLE

    for row in rows:
        acc = f"{row['best_acc']:.2%}" if row["best_acc"] is not None else ""
        table.add_row(row["run_id"], f"[{STATE_STYLE.get(row['state'], '')}]{row['state']}[/]",
                      Path(row["preset"]).stem if row["preset"] else "", acc, fmt_time(row["started"], short=True))
    console.print(table)


# -------------------------------------------------------------------------------------- spec


@spec_app.command("check")
def spec_check(preset: Optional[str] = typer.Argument(None, help="Preset file or name (default: quickstart)."),
               sets: list[str] = SetOpt) -> None:
    """Validate a preset (with overrides) and print the resolved spec as TOML."""
    spec, label = resolve_spec(preset, sets)
    sys.stdout.write(dump_spec(spec, f"resolved from {label}"))
    err.print(f"[green]ok:[/] {label} is a valid spec")


@spec_app.command("schema")
def spec_schema_cmd() -> None:
    """Print the run spec's JSON schema."""
    print(json.dumps(spec_schema(), indent=2))


from .compare import compare_command  # noqa: E402
from .passes_cli import calibrate_command, ensemble_command, lr_find_command, swa_command, tta_command  # noqa: E402

from .report import report_command  # noqa: E402

app.command("report")(report_command)
app.command("compare")(compare_command)
app.command("swa")(swa_command)
app.command("calibrate")(calibrate_command)
app.command("tta")(tta_command)
app.command("ensemble")(ensemble_command)
app.command("lr-find")(lr_find_command)


def run_main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run_main()
