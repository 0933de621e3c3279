"""Every run in the runs dir: state, preset, best accuracy, start time; Enter opens one."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from cockpit.core.formats import STATE_MARK, STATE_STYLE
from cockpit.core.runs import COLUMNS, RunRow, reap_dead_runs, scan_runs
from engine.store import ACTIVE_STATES

from ..messages import RunChosen, RunsScanned
from ..widgets.key_footer import KeyFooter

SCAN_S = 1.5


class RunsScreen(Screen):
    """The runs list; running ones first in mind: the newest active run is highlighted."""

    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, tooltip="Watch or review the highlighted run"),
        Binding("f5", "rescan", "Refresh", show=False),
    ]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__(id="runs")
        self.runs_dir = Path(runs_dir)
        self.rows: list[RunRow] = []
        self.highlight: str | None = None
        self._scanning = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="runs-head")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in COLUMNS:
            table.add_column(label, key=label)
        self.set_interval(SCAN_S, self.rescan)
        self.rescan()
        table.focus()

    def on_screen_resume(self) -> None:
        self.sub_title = f"runs · {self.runs_dir}"
        self.rescan()

    def show_run(self, run_id: str | None) -> None:
        """Highlight this run when the list is (re)drawn."""
        self.highlight = run_id
        self._move_to(run_id)

    def action_rescan(self) -> None:
        self.rescan()

    def rescan(self) -> None:
        if self._scanning or self not in self.app.screen_stack:
            return
        self._scanning = True
        runs_dir = self.runs_dir

        def work() -> None:
            try:
                reap_dead_runs(runs_dir)  # the list refresh owns marking runs whose worker is gone
                rows = scan_runs(runs_dir)
            except Exception:
                rows = self.rows
            self.post_message(RunsScanned(rows))

        self.run_worker(work, thread=True, group="scan", exit_on_error=False)

    def on_runs_scanned(self, message: RunsScanned) -> None:
        self._scanning = False
        rows = message.rows
        table = self.query_one(DataTable)
        current = None
        if table.row_count and table.cursor_row is not None and 0 <= table.cursor_row < len(self.rows):
            current = self.rows[table.cursor_row].run_id
        if rows == list(reversed(self.rows)) and table.row_count == len(rows):
            return
        self.rows = list(reversed(rows))  # newest first
        table.clear()
        for r in self.rows:
            run_id, state, preset, acc, started = r.cells()
            table.add_row(run_id, Text(f"{STATE_MARK.get(state, '?')} {state}", style=STATE_STYLE.get(state, "")),
                          preset, Text(acc, justify="right"), started, key=run_id)
        active = sum(1 for r in self.rows if r.state in ACTIVE_STATES)
        head = self.query_one("#runs-head", Static)
        if not self.rows:
            head.update(f"no runs in {self.runs_dir} yet: e opens the spec editor, ^r there launches one")
        else:
            head.update(f"{len(self.rows)} run{'s' if len(self.rows) != 1 else ''} in {self.runs_dir}"
                        f" · {active} active · Enter opens the highlighted run")
        self._move_to(self.highlight or current)
        self.highlight = None if self.highlight and self._has(self.highlight) else self.highlight

    def _has(self, run_id: str) -> bool:
        return any(r.run_id == run_id for r in self.rows)

    def _move_to(self, run_id: str | None) -> None:
        if not run_id:
            return
        for i, r in enumerate(self.rows):
            if r.run_id == run_id:
                self.query_one(DataTable).move_cursor(row=i)
                return

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or not 0 <= table.cursor_row < len(self.rows):
            return
        row = self.rows[table.cursor_row]
        if row.error:
            self.notify(f"{row.run_id} cannot be opened: {row.error}", severity="error")
            return
        self.post_message(RunChosen(row.path))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:  # a mouse click
        event.stop()
        self.action_open()
