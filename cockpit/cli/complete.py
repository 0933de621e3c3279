"""Shell completion (Typer's own: `cockpit --install-completion`) for preset names, sweep names and
run ids. Each runs on every Tab press: it lists the runs dir and reads preset headers, nothing more."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cockpit.core.preset_info import preset_infos


def complete_preset(incomplete: str) -> list[tuple[str, str]]:
    """Preset names for shell completion, each with its first sentence as help."""
    return [(i.name, i.summary) for i in preset_infos(sweeps=False) if i.name.startswith(incomplete)]


def complete_sweep(incomplete: str) -> list[tuple[str, str]]:
    return [(i.name, i.summary) for i in preset_infos() if i.kind == "sweep" and i.name.startswith(incomplete)]


def complete_run(ctx: typer.Context, incomplete: str) -> list[str]:
    """Run ids (newest first) in the runs dir the command line names, else $COCKPIT_RUNS, else ./runs."""
    from engine.store import RUNS_ENV, list_run_dirs

    runs_dir = None
    node = ctx
    while node is not None and runs_dir is None:
        runs_dir = node.params.get("runs_dir")
        node = node.parent
    runs_dir = Path(runs_dir or os.environ.get(RUNS_ENV) or "runs")
    try:
        ids = [p.name for p in list_run_dirs(runs_dir)]
    except OSError:
        return []
    return [i for i in reversed(ids) if incomplete in i] + (["last"] if "last".startswith(incomplete) else [])
