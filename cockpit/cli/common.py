"""What every `cockpit` command shares: the consoles, `fail()`, the common options, and turning a
preset or a run reference into a spec or a run (exit 2 with the reason when it cannot)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape

from cockpit.core.presets import DEFAULT_PRESET, locate, missing_preset

from .complete import complete_run
from engine.spec import RunSpec, SpecError, load_spec
from engine.store import RUNS_ENV, Run, StoreError, default_runs_dir, resolve_run

console = Console()
err = Console(stderr=True)

RunsDirOpt = typer.Option(None, "--runs-dir", envvar=RUNS_ENV, help="Where runs live (default ./runs).",
                          show_default=False)
SetOpt = typer.Option([], "--set", "-s", help="Override a spec field: KEY=VALUE, e.g. optim.lr=0.1 (repeatable).")
RunArg = typer.Argument(..., metavar="RUN", help="Run id, any unique part of one, 'last', or run dir.",
                        autocompletion=complete_run)
WidthOpt = typer.Option(0, "--width", help="Width of the terminal output (0: the terminal's).", show_default=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Say what went wrong on stderr and exit (2: a usage error, 1: the run or the worker failed).

    The message is printed as it is: brackets in it (a TOML table, a list) are never read as markup."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def runs_dir_or_default(runs_dir: Optional[Path]) -> Path:
    return Path(runs_dir) if runs_dir else default_runs_dir()


def resolve_spec(preset: Optional[str], sets: list[str]) -> tuple[RunSpec, str]:
    """(spec, preset label) or exit 2 with every problem listed."""
    try:
        if preset is None:
            return load_spec(None, sets), DEFAULT_PRESET
        return load_spec(preset_file(preset), sets), str(preset_file(preset, quiet=True))
    except SpecError as exc:
        fail(str(exc))


def preset_file(ref: str, sub: str = "", quiet: bool = False) -> Path:
    """The file a preset reference names (a path, a name, or `presets/NAME.toml` read as the shipped
    NAME, said in one line on stderr); exit 2 with the closest names when there is none."""
    path, note = locate(ref, sub)
    try:
        missing = not path.exists()
    except OSError:  # a name too long for the filesystem: reading it says so in one line
        missing = False
    if missing:
        fail(missing_preset(ref, sub))
    if note and not quiet:
        err.print(note, style="dim", highlight=False, soft_wrap=True, markup=False)
    return path


def open_run(ref: str, runs_dir: Optional[Path]) -> Run:
    """The run a reference names, or exit 2 saying where it looked."""
    try:
        return resolve_run(ref, runs_dir)
    except StoreError as exc:
        fail(str(exc))


def output_console(width: int) -> Console:
    """The console a report or comparison prints to (`--width`, 0: the terminal's)."""
    return Console(width=width or None)
