"""Every run in the runs dir: state, preset, best accuracy, start time; Enter opens one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from engine.store import ACTIVE_STATES, iter_runs

from ..widgets.key_footer import KeyFooter
from ..widgets.messages import RunChosen, RunsScanned
from ..widgets.run_bar import STATE_MARK, STATE_STYLE

SCAN_S = 1.5


def scan_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run (oldest first); marks runs whose worker is gone as crashed, like every viewer."""
    rows = []
    for r in iter_runs(runs_dir):
        try:
            meta = r.meta()
            rows.append({
                "run_id": r.run_id, "state": r.state(), "preset": meta.get("preset", ""),
                "best_acc": r.best("test_acc"), "started": meta.get("started") or meta.get("created"),
                "path": r.path,
            })
        except Exception:  # a run being created or a damaged db: skip it this time
            continue
        finally:
            r.close()
    return rows


def fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


class RunsScreen(Screen):
    """The runs list; running ones first in mind: the newest active run is highlighted."""

    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, tooltip="Watch or review the highlighted run"),
        Binding("f5", "rescan", "Refresh", show=False),
    ]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__(id="runs")
        self.runs_dir = Path(runs_dir)
        self.rows: list[dict[str, Any]] = []
        self.highlight: str | None = None
        self._scanning = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="runs-head")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("run", "run"), ("state", "state"), ("preset", "preset"), ("best", "best acc"),
                           ("started", "started")):
            table.add_column(label, key=key)
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
            current = self.rows[table.cursor_row]["run_id"]
        if [(r["run_id"], r["state"], r["best_acc"]) for r in rows] == \
                [(r["run_id"], r["state"], r["best_acc"]) for r in self.rows] and table.row_count == len(rows):
            return
        self.rows = list(reversed(rows))  # newest first
        table.clear()
        for r in self.rows:
            state = r["state"]
            acc = f"{r['best_acc']:.2%}" if r["best_acc"] is not None else ""
            table.add_row(
                r["run_id"], Text(f"{STATE_MARK.get(state, '?')} {state}", style=STATE_STYLE.get(state, "")),
                Path(r["preset"]).stem if r["preset"] else "", Text(acc, justify="right"), fmt_time(r["started"]),
                key=r["run_id"])
        active = sum(1 for r in self.rows if r["state"] in ACTIVE_STATES)
        head = self.query_one("#runs-head", Static)
        if not self.rows:
            head.update(f"no runs in {self.runs_dir} yet: e opens the spec editor, ^r there launches one")
        else:
            head.update(f"{len(self.rows)} run{'s' if len(self.rows) != 1 else ''} in {self.runs_dir}"
                        f" · {active} active · Enter opens the highlighted run")
        self._move_to(self.highlight or current)
        self.highlight = None if self.highlight and self._has(self.highlight) else self.highlight

    def _has(self, run_id: str) -> bool:
        return any(r["run_id"] == run_id for r in self.rows)

    def _move_to(self, run_id: str | None) -> None:
        if not run_id:
            return
        for i, r in enumerate(self.rows):
            if r["run_id"] == run_id:
                self.query_one(DataTable).move_cursor(row=i)
                return

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or not 0 <= table.cursor_row < len(self.rows):
            return
        self.post_message(RunChosen(self.rows[table.cursor_row]["path"]))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:  # a mouse click
        event.stop()
        self.action_open()
