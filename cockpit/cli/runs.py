"""`cockpit runs`: every run in the runs dir, as a table or one JSON object per run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from cockpit.core.formats import STATE_STYLE, fmt_duration
from cockpit.core.runs import BEST_CAPTION, COLUMNS, reap_dead_runs, scan_runs

from .common import RunsDirOpt, console, runs_dir_or_default


def runs(runs_dir: Optional[Path] = RunsDirOpt,
         as_json: bool = typer.Option(False, "--json", help="One JSON object per run, for scripts."),
         reverse: bool = typer.Option(False, "--reverse", "-r", help="Oldest first (the default is newest first, "
                                      "as the TUI's runs list).")) -> None:
    """List runs, newest first: state, preset, best acc (the test accuracy of best.pt, the checkpoint
    selected on validation accuracy, or the last evaluation without a validation split), start time."""
    reap_dead_runs(runs_dir)  # the listing owns finding runs whose worker is gone
    rows = scan_runs(runs_dir)  # oldest first
    if not reverse:
        rows.reverse()
    if as_json:
        for row in rows:
            print(json.dumps(row.as_json()))
        return
    if not rows:
        console.print(f"no runs in {runs_dir_or_default(runs_dir)}")
        return
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, caption=BEST_CAPTION,
                  caption_justify="left", caption_style="dim")
    table.add_column("run", no_wrap=True)  # the id is what the other commands take: never cut it
    for col in COLUMNS[1:]:
        table.add_column(col, justify="right" if col == "best acc" else "left", no_wrap=True,
                         min_width=11 if col == "started" else None)
    for row in rows:
        run_id, state, *rest = row.cells()
        if row.unreadable:
            rest[0] = "(see below)"  # the reason is printed in full under the table
        table.add_row(run_id, Text(state, style=STATE_STYLE.get(state, "")), *rest)
    console.print(table)
    for row in rows:  # the reason in full: the table may have cut it
        if row.error:
            console.print(f"{row.run_id} is {row.state}: {row.error}", highlight=False, soft_wrap=True)
        elif not row.responding:
            console.print(f"{row.run_id} is {row.shown_state}: no heartbeat for {fmt_duration(row.silent_s)}",
                          highlight=False, soft_wrap=True)


COMMANDS = {"runs": runs}
