"""The sweep's ledger on this machine: which run each trial started here has
(runs/sweeps/<name>/trials.jsonl, one JSON line per trial taken up), so the table can say `run dir
missing` where a trial's run dir was deleted instead of quietly counting one seed fewer.

Appended with one write per line (O_APPEND: lines from several sweep processes never interleave);
a line that does not parse (a write cut short) is skipped. Torch-free and Optuna-free.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

LEDGER = "trials.jsonl"


@dataclass(frozen=True)
class Entry:
    trial: int
    config: str
    seed: int
    run_id: str


def record(folder: Path, entry: Entry) -> None:
    """Append one trial's run to the ledger in `folder` (the sweep's directory)."""
    line = json.dumps({"trial": entry.trial, "config": entry.config, "seed": entry.seed, "run": entry.run_id}) + "\n"
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(folder) / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def entries(folder: Path) -> list[Entry]:
    """The ledger's entries, oldest first (none without a ledger)."""
    path = Path(folder) / LEDGER
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
            out.append(Entry(int(d["trial"]), str(d["config"]), int(d["seed"]), str(d["run"])))
        except (ValueError, KeyError, TypeError):
            continue  # a torn or foreign line
    return out
