"""Names the sweep modules share, importable without Optuna (the views read them)."""

from __future__ import annotations

from pathlib import Path

INTERRUPTED = "interrupted"  # the outcome of a trial stopped by Ctrl+C: `resume` runs it again
JOURNAL = "journal.log"


def sweep_dir(runs_dir: Path, name: str) -> Path:
    """Where a sweep keeps its journal, its definition and its report: runs/sweeps/<name>/."""
    return Path(runs_dir) / "sweeps" / name
