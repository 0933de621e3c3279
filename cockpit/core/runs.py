"""The runs index: one row per run in a runs dir, as every runs table shows it (CLI and TUI).

Scanning only reads (each store is opened read-only); `reap_dead_runs` is the separate, explicit
step that marks runs whose worker is gone as crashed, made by the commands that list runs. A run
whose run.db cannot be read is listed as `unreadable`, with the reason; it never hides the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from engine.store import ACTIVE_STATES, NOT_RESPONDING, StoreError, iter_runs, reap_dead_runs, shown_state, silent_for

from .formats import fmt_acc, fmt_started
from .selection import BEST_MEANS, Selection, selected

COLUMNS = ("run", "state", "preset", "best acc", "started")
UNREADABLE = "unreadable"

__all__ = ["BEST_CAPTION", "BEST_MEANS", "BEST_SHORT", "COLUMNS", "UNREADABLE", "RunRow", "reap_dead_runs", "scan_runs"]


@dataclass(frozen=True)
class RunRow:
    """What a runs table knows about one run."""

    run_id: str
    state: str
    preset: str
    best_acc: float | None  # test accuracy of best.pt: selected on validation, else the last evaluation
    started: float | None
    path: Path
    error: str = ""  # why the run failed or crashed (its meta `error`), or why an unreadable store cannot be read
    best_step: int | None = None  # best.pt's evaluation step
    best_chosen_by: str = ""  # "val_acc", or "last evaluation" where the run has no validation split
    responding: bool = True  # False: live, but its worker has not beaten for too long
    silent_s: float | None = None  # a live run's seconds since its worker's last heartbeat
    runtime: dict | None = None  # what actually ran (meta `runtime`: engine.contracts.RuntimeInfo), None before it started

    @property
    def unreadable(self) -> bool:
        return self.state == UNREADABLE

    @property
    def shown_state(self) -> str:
        """The state as the table shows it (`not responding` for a silent live run)."""
        return self.state if self.responding else NOT_RESPONDING

    def cells(self) -> tuple[str, str, str, str, str]:
        """The row as text, one cell per COLUMNS entry (the state is styled by the view); an
        unreadable run shows its reason where the preset would be."""
        if self.unreadable:
            return self.run_id, self.state, self.error, "", ""
        preset = Path(self.preset).stem if self.preset else ""
        acc = fmt_acc(self.best_acc) + ("*" if self.best_chosen_by == LAST_EVALUATION else "")
        return self.run_id, self.shown_state, preset, acc, fmt_started(self.started)

    def as_json(self) -> dict:
        """The row for scripts: `state` as the table shows it (`not responding` included), `responding`."""
        return asdict(self) | {"path": str(self.path), "state": self.shown_state}


LAST_EVALUATION = "last evaluation"
# under a runs table: what its "best acc" is
BEST_CAPTION = BEST_MEANS + "; * marks a run without a validation split"
BEST_SHORT = "best acc: best.pt by val (* no val)"


def _best(sel: Selection | None) -> dict:
    """best.pt's test accuracy (selected on validation, never the highest test accuracy), its step and basis."""
    if sel is None:
        return {"best_acc": None}
    return {"best_acc": sel.test_acc, "best_step": sel.step,
            "best_chosen_by": "val_acc" if sel.basis == "val_acc" else LAST_EVALUATION}


def scan_runs(runs_dir: Path | None) -> list[RunRow]:
    """One row per run, oldest first; a run whose store cannot be read is an `unreadable` row."""
    rows = []
    for run in iter_runs(runs_dir, readonly=True):
        try:
            meta = run.check().meta()
            state = meta.get("state", "created")
            rows.append(RunRow(run.run_id, state, meta.get("preset", ""),
                               started=meta.get("started") or meta.get("created"), path=run.path,
                               error=str(meta.get("error") or ""), responding=shown_state(state, meta) != NOT_RESPONDING,
                               silent_s=silent_for(meta) if state in ACTIVE_STATES else None, runtime=meta.get("runtime"),
                               **_best(selected(run))))
        except StoreError as exc:
            reason = str(exc).removeprefix(str(run.db_path)).strip()
            rows.append(RunRow(run.run_id, UNREADABLE, "", None, None, run.path, f"run.db {reason}"))
        except Exception as exc:  # a store damaged past its meta table
            rows.append(RunRow(run.run_id, UNREADABLE, "", None, None, run.path, f"run.db is damaged ({exc})"))
        finally:
            run.close()
    return rows
