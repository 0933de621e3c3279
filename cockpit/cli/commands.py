"""The `cockpit` Typer group: its top-level options and the TUI when no command is given. Each
group of commands lives in its own module, imported when used (lazy.py); this one assembles them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from cockpit import __version__
from engine.store import RUNS_ENV

from .common import RunsDirOpt, console, resolve_spec, runs_dir_or_default
from .lazy import LazyGroup

app = typer.Typer(
    cls=LazyGroup,  # each command's module is imported when it is used: `cockpit` alone opens the TUI fast
    help="Training Cockpit: train image classifiers from the terminal. Run with no command to open the TUI.",
    add_completion=True, no_args_is_help=False, rich_markup_mode=None,
    pretty_exceptions_show_locals=False,  # a traceback's locals would print secrets (a storage URL's password)
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    runs_dir: Optional[Path] = RunsDirOpt,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Open the TUI's editor on this preset."),
    refresh: Optional[float] = typer.Option(
        None, "--refresh", min=0.1, max=60.0, metavar="SECONDS",
        help="How often the TUI's views read and redraw a run (default 0.4; 2 or 5 on a slow SSH link)."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """Open the TUI when no command is given."""
    if version:
        console.print(f"training-cockpit {__version__}")
        raise typer.Exit()
    if runs_dir is not None:  # `cockpit --runs-dir DIR CMD`: every command (and its workers) uses DIR
        _set_env(ctx, RUNS_ENV, str(runs_dir))
    if ctx.invoked_subcommand is None:
        if preset is not None:
            resolve_spec(preset, [])  # a bad preset exits 2 here, before the screen is taken over
        from . import open_tui

        open_tui(runs_dir_or_default(runs_dir), preset, refresh=refresh)


def _set_env(ctx: typer.Context, name: str, value: str) -> None:
    """Set an environment variable for this command, put back as it was when the command ends."""
    before = os.environ.get(name)
    os.environ[name] = value
    ctx.call_on_close(lambda: os.environ.pop(name, None) if before is None else os.environ.update({name: before}))
