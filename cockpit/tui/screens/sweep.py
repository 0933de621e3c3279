"""A sweep at a glance: the live results table (mean ± std over seeds, the guide's figure) and every
trial with its progress; Enter opens the highlighted trial's dashboard. Reads the trials' run stores
(engine.sweep.table) and runs/sweeps/*/sweep.json: no Optuna, no torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..messages import RunChosen
from .base import TableView

if TYPE_CHECKING:  # the sweep table and its report helpers are imported when a sweep is shown: `cockpit` opens fast
    from engine.sweep.table import SweepTable, TrialRow

REFRESH_S = 2.0


def sweep_names(runs_dir: Path) -> list[str]:
    """The sweeps with a definition under runs_dir/sweeps/, the most recently changed last."""
    from engine.sweep.table import SWEEP_JSON

    folder = Path(runs_dir) / "sweeps"
    found = [p.parent for p in folder.glob(f"*/{SWEEP_JSON}")] if folder.is_dir() else []
    return [p.name for p in sorted(found, key=lambda p: (p / SWEEP_JSON).stat().st_mtime)]


def progress(t: TrialRow, width: int = 10) -> str:
    """`███░░░ 2/4` epochs, or the state for a trial that has ended short."""
    from engine.sweep.table import MISSING, UNREADABLE

    if not t.epochs_total:
        return "–" if t.state in (MISSING, UNREADABLE) else "starting"
    done = min(t.epochs / t.epochs_total, 1.0)
    bar = "█" * round(done * width) + "░" * (width - round(done * width))
    return f"{bar} {t.epochs:g}/{t.epochs_total}"


class SweepScreen(TableView):
    """The newest sweep in the runs dir (n / p step through the others)."""

    DEFAULT_CSS = """
    SweepScreen #sweep-head { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    SweepScreen #sweep-table { height: auto; max-height: 50%; }
    SweepScreen #sweep-trials { height: 1fr; }
    """
    BINDINGS = [
        Binding("enter", "open", "Open trial", priority=True, tooltip="The highlighted trial's dashboard"),
        Binding("n", "cycle(1)", "Next sweep", tooltip="Show the next sweep in the runs dir"),
        Binding("p", "cycle(-1)", "Prev sweep", tooltip="Show the previous sweep in the runs dir"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__(id="sweeps")
        self.runs_dir = Path(runs_dir)
        self.name_shown: str | None = None
        self.table: SweepTable | None = None

    def body(self) -> ComposeResult:
        yield Static("", id="sweep-head")
        yield DataTable(id="sweep-table", cursor_type="none", zebra_stripes=True)
        yield DataTable(id="sweep-trials", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#sweep-trials", DataTable).add_columns("run", "config", "seed", "state", "progress", "test acc")
        self.set_interval(REFRESH_S, self.action_refresh)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_cycle(self, step: int) -> None:
        names = sweep_names(self.runs_dir)
        if names:
            i = names.index(self.name_shown) if self.name_shown in names else len(names) - 1
            self.name_shown = names[(i + step) % len(names)]
            self.action_refresh()

    def action_refresh(self) -> None:
        from cockpit.report.sweep import title
        from engine.sweep.common import sweep_dir
        from engine.sweep.table import sweep_table

        names = sweep_names(self.runs_dir)
        head = self.query_one("#sweep-head", Static)
        if not names:
            head.update(f"no sweep in {self.runs_dir} yet: `cockpit sweep FILE` starts one")
            return
        if self.name_shown not in names:
            self.name_shown = names[-1]
        self.sub_title = f"sweep {self.name_shown} · {sweep_dir(self.runs_dir, self.name_shown)}"
        self.table = sweep_table(self.runs_dir, self.name_shown)
        head.update(title(self.table) + (f"   ({len(names)} sweeps: n / p)" if len(names) > 1 else ""))
        self._draw_results(self.table)
        self._draw_trials(self.table)

    def _draw_results(self, table: SweepTable) -> None:
        from cockpit.report.sweep import cells

        widget = self.query_one("#sweep-table", DataTable)
        headers, rows = cells(table)
        if [str(c.label) for c in widget.columns.values()] != headers:
            widget.clear(columns=True)
            widget.add_columns(*headers)
        widget.clear()
        for row in rows:
            widget.add_row(*row)

    def _draw_trials(self, table: SweepTable) -> None:
        from cockpit.core.formats import fmt_pct

        widget = self.query_one("#sweep-trials", DataTable)
        cursor = widget.cursor_row
        widget.clear()
        for t in table.trials:
            widget.add_row(t.run_id, t.config, str(t.seed), t.state, progress(t), fmt_pct(t.acc), key=t.run_id)
        if table.trials and cursor is not None:
            widget.move_cursor(row=min(cursor, len(table.trials) - 1))

    def action_open(self) -> None:
        widget = self.query_one("#sweep-trials", DataTable)
        if self.table is None or not self.table.trials or widget.cursor_row is None:
            self.notify("no trial to open", severity="warning")
            return
        trial = self.table.trials[min(widget.cursor_row, len(self.table.trials) - 1)]
        if not (self.runs_dir / trial.run_id).is_dir():
            self.notify(f"{trial.run_id}: its run dir is gone", severity="warning")
            return
        self.post_message(RunChosen(self.runs_dir / trial.run_id))
