"""The `cockpit` command: the TUI with no subcommand, headless runs and run tools as subcommands.

Exit codes: 0 done, 1 the run failed, 2 usage errors (bad preset, bad --set, unknown run),
130 stopped with Ctrl+C. The Typer app is in commands.py; this module is only the entry point, kept
light so that `cockpit` alone opens the TUI without building the command-line parser.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

COMPLETE_ENV = "_COCKPIT_COMPLETE"  # set by the shell-completion scripts Typer installs


def run_main() -> None:
    """Console-script entry point."""
    if len(sys.argv) == 1 and COMPLETE_ENV not in os.environ:
        try:
            open_tui()
        except KeyboardInterrupt:  # Ctrl+C while it loads: quit without a traceback, as a stopped command
            sys.exit(130)
    else:
        from rich.markup import escape

        from engine.errors import UsageError

        from .commands import app

        try:
            app()
        except UsageError as exc:
            # what a command did not catch itself: a damaged store found while reading (a text value among
            # the metrics, say) is one line and exit 2 from every command, as UsageError promises
            from .common import err

            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(2)


def open_tui(runs_dir: Path | None = None, preset: str | None = None, refresh: float | None = None,
             **run_options: Any) -> None:
    """The TUI on `runs_dir` (default: COCKPIT_RUNS or ./runs), its editor on `preset`, its views reading
    a run every `refresh` seconds (None: the default). Bare `cockpit`
    calls it without Typer; the Typer callback, for `cockpit --runs-dir DIR` or `-p PRESET`.

    Start-up is mostly imports, and the cyclic garbage collector would run dozens of times over the
    objects they create, none of which are garbage: it is paused until the app object is built, and
    what exists then is frozen out of later collections (`bench/tui_startup.py` measures the start).
    `run_options` go to `App.run` (the bench runs it headless)."""
    gc.disable()
    try:
        from cockpit.tui.app import CockpitApp
        from engine.store import default_runs_dir

        app = CockpitApp(runs_dir=runs_dir or default_runs_dir(), preset=preset, refresh=refresh)
    finally:
        gc.freeze()
        gc.enable()
    app.run(**run_options)


def __getattr__(name: str) -> Any:
    """`from cockpit.cli import app` (the Typer app) without importing Typer on the TUI's path."""
    if name == "app":
        from .commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
