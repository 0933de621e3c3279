"""Every run in the runs dir: state, preset, best accuracy, start time. Enter opens one; space marks
runs to compare (c) or to overlay their curves live (o); the highlighted run can be resumed, reported on or deleted (asks first)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from cockpit.core.formats import STATE_MARK, STATE_STYLE
from cockpit.core.resume import delete, resume, why_not_delete
from cockpit.core.runs import BEST_SHORT, COLUMNS, RunRow, reap_dead_runs, scan_runs
from engine.store import ACTIVE_STATES, Run, StoreError

from ..messages import RunChosen, RunsScanned
from ..jobs import export_report
from .base import TableView
from .dialogs import ConfirmScreen

SCAN_S = 1.5
SCROLLBAR = 2  # the table's vertical scrollbar, once the runs outnumber the rows on screen
MIN_PRESET = 6  # a preset shorter than this says nothing: the column goes (the run id names the run)


class RunsScreen(TableView):
    """The runs list; running ones first in mind: the newest active run is highlighted."""

    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, tooltip="Watch or review the highlighted run"),
        Binding("space,m", "mark", "Mark", tooltip="Mark or unmark the highlighted run (to compare)"),
        Binding("c", "compare", "Compare", tooltip="Compare the marked runs: spec diff, results, curves"),
        Binding("o", "overlay", "Overlay", tooltip="The marked runs' curves overlaid in one chart, live, with a legend "
                "of their ids and differing spec fields"),
        Binding("R", "resume", "Resume", tooltip="Resume the highlighted stopped, crashed or failed run"),
        Binding("x", "report", "Report", tooltip="Export the highlighted run's report"),
        Binding("delete,D", "delete", "Delete", tooltip="Delete the highlighted run, or the marked runs (asks first)"),
        Binding("f5", "rescan", "Refresh", show=False),
    ]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__(id="runs")
        self.runs_dir = Path(runs_dir)
        self.rows: list[RunRow] = []
        self.highlight: str | None = None
        self.marked: list[str] = []  # run ids in the order they were marked (the first is the baseline)
        self._scanning = False

    def body(self) -> ComposeResult:
        yield Static("", id="runs-head")
        # one space between columns instead of two (cell padding 0, a leading space in each cell): the
        # mark column then costs no width and nothing is cut at 80 columns
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=False, cell_padding=0)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self._columns(table, with_preset=True)
        self._show_head()  # an empty runs dir says so (a scan that finds nothing new redraws nothing)
        self.set_interval(SCAN_S, self.rescan)
        self.rescan()
        table.focus()

    def on_screen_resume(self) -> None:
        # the folder is named on the line below; the header says what "best acc" is (the test set chose nothing)
        self.sub_title = f"runs · {BEST_SHORT}"
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
        self.marked = [m for m in self.marked if self._has(m)]
        self._fill()
        self._show_head()
        self._move_to(self.highlight or current)
        self.highlight = None if self.highlight and self._has(self.highlight) else self.highlight

    def _fill(self) -> None:
        """One row per run; the preset (or an unreadable run's reason) is shortened to what the width leaves,
        and left out where nothing is left, so that the start time is never cut and the run id is whole."""
        table = self.query_one(DataTable)
        cells = [r.cells() for r in self.rows]
        scrollbar = SCROLLBAR if len(cells) >= table.size.height else 0
        room = preset_room(cells, table.size.width - scrollbar)
        with_preset = room is None or room >= MIN_PRESET
        if with_preset != ("preset" in table.columns):
            self._columns(table, with_preset)
        table.clear()
        for run_id, state, preset, acc, started in cells:
            # Text, not str: a str cell is parsed as markup, and a reason why a store is unreadable may hold brackets
            row = [self._mark_cell(run_id), Text(f" {run_id}"),
                   Text(f" {STATE_MARK.get(state, '?')} {state}", style=STATE_STYLE.get(state, "")),
                   Text(f" {clip(preset, room)}"), Text(f" {acc}", justify="right"), Text(f" {started}")]
            table.add_row(*(row if with_preset else row[:3] + row[4:]), key=run_id)

    @staticmethod
    def _columns(table: DataTable, with_preset: bool) -> None:
        table.clear(columns=True)
        table.add_column(" ", key="mark")
        for label in COLUMNS:
            if label != "preset" or with_preset:
                table.add_column(Text(f" {label}", justify="right" if label == "best acc" else "left"), key=label)

    def on_resize(self) -> None:
        if self.rows:
            table = self.query_one(DataTable)
            current = self.rows[table.cursor_row].run_id if 0 <= table.cursor_row < len(self.rows) else None
            self.call_after_refresh(self._refill, current)

    def _refill(self, current: str | None) -> None:
        self._fill()
        self._move_to(current)

    def _show_head(self) -> None:
        head = self.query_one("#runs-head", Static)
        if not self.rows:
            head.update(f"no runs in {self.runs_dir} yet: e opens the spec editor, ^r there launches one")
            return
        active = sum(1 for r in self.rows if r.state in ACTIVE_STATES)
        marks = (f" · {len(self.marked)} marked (c compares, o overlays)" if self.marked
                 else " · space marks runs to compare or overlay")
        head.update(f"{len(self.rows)} run{'s' if len(self.rows) != 1 else ''} in {self.runs_dir}"
                    f" · {active} active{marks}")

    def _mark_cell(self, run_id: str) -> Text:
        if run_id not in self.marked:
            return Text(" ")
        return Text(chr(65 + self.marked.index(run_id)) if len(self.marked) <= 26 else "●", style="bold reverse")

    def _has(self, run_id: str) -> bool:
        return any(r.run_id == run_id for r in self.rows)

    def _move_to(self, run_id: str | None) -> None:
        if not run_id:
            return
        for i, r in enumerate(self.rows):
            if r.run_id == run_id:
                self.query_one(DataTable).move_cursor(row=i)
                return

    def current(self) -> RunRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_open(self) -> None:
        row = self.current()
        if row is None:
            self.notify("no run to open: e opens the spec editor", severity="warning")
            return
        if row.unreadable:
            self.notify(f"{row.run_id} cannot be opened: {row.error}", severity="error")
            return
        self.post_message(RunChosen(row.path))

    # -- marks and actions on runs ------------------------------------------------------------

    def action_mark(self) -> None:
        row = self.current()
        if row is None:
            self.notify("no run to mark", severity="warning")
            return
        if row.run_id in self.marked:
            self.marked.remove(row.run_id)
        else:
            self.marked.append(row.run_id)
        table = self.query_one(DataTable)
        for r in self.rows:  # the letters (A, B, ...) follow the order of marking
            table.update_cell(r.run_id, "mark", self._mark_cell(r.run_id))
        self._show_head()
        if table.cursor_row is not None and table.cursor_row < len(self.rows) - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_compare(self) -> None:
        from .compare import CompareScreen  # plotext is loaded when a comparison is first opened

        rows = [r for m in self.marked for r in self.rows if r.run_id == m and not r.error]
        if len(rows) < 2:
            self.notify(f"compare needs two or more marked runs ({len(rows)} marked): space marks the highlighted one",
                        severity="warning")
            return
        self.app.push_screen(CompareScreen([r.path for r in rows]))

    def action_overlay(self) -> None:
        from .overlay import OverlayScreen  # plotext is loaded when a chart is first opened

        rows = [r for m in self.marked for r in self.rows if r.run_id == m and not r.error]
        if len(rows) < 2:
            self.notify(f"overlay needs two or more marked runs ({len(rows)} marked): space marks the highlighted one",
                        severity="warning")
            return
        self.app.push_screen(OverlayScreen([r.path for r in rows]))

    def action_report(self) -> None:
        row = self.current()
        if row is None or row.unreadable:
            self.notify("no readable run highlighted", severity="warning")
            return
        export_report(self.app, row.path)

    def action_resume(self) -> None:
        row = self.current()
        if row is None:
            self.notify("no run to resume", severity="warning")
            return
        self.run_worker(lambda: self._resume(row.path), thread=True, group="resume", exit_on_error=False)

    def _resume(self, path: Path) -> None:
        try:
            run = Run(path)
            try:
                reason, proc = None, resume(run, "TUI")
            finally:
                run.close()
        except StoreError as exc:  # another live worker has it, or it cannot be resumed
            reason, proc = str(exc), None
        except Exception as exc:
            reason, proc = f"cannot resume: {exc}", None
        if proc is None:
            self.app.call_from_thread(self.notify, reason or "cannot resume", severity="warning", timeout=8)
            return
        remember = getattr(self.app, "remember_worker", None)
        if remember is not None:
            self.app.call_from_thread(remember, proc)
        self.app.call_from_thread(self.notify, f"{path.name} resumed (worker pid {proc.pid})", title="resumed")
        self.app.call_from_thread(self.post_message, RunChosen(path))

    def action_delete(self) -> None:
        targets = [r for m in self.marked for r in self.rows if r.run_id == m] or [r for r in [self.current()] if r]
        if not targets:
            self.notify("no run to delete", severity="warning")
            return
        active = [r.run_id for r in targets if r.state in ACTIVE_STATES]
        if active:
            self.notify(f"{', '.join(active)} still running: stop it first", severity="warning", timeout=8)
            return
        names = "\n".join(r.run_id for r in targets)

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete([r.path for r in targets])

        self.app.push_screen(ConfirmScreen(
            f"Delete {len(targets)} run{'s' if len(targets) != 1 else ''}?",
            f"{names}\nIts directory (metrics, checkpoints, reports) is removed for good.", yes="delete"), answered)

    def _delete(self, paths: list[Path]) -> None:
        gone = []
        for path in paths:
            try:
                run = Run(path)
                reason = why_not_delete(run)
                if reason:
                    run.close()
                    self.notify(reason, severity="warning")
                    continue
                dashboard = getattr(self.app, "dashboard", None)
                if dashboard is not None:
                    dashboard.forget(path)  # before the files go: its reader holds the store open
                delete(run)
                gone.append(path.name)
            except Exception as exc:
                self.notify(f"cannot delete {path.name}: {exc}", severity="error")
        self.marked = [m for m in self.marked if m not in gone]
        if gone:
            self.notify(f"deleted {', '.join(gone)}", title="deleted")
        self.rescan()


def preset_room(cells: list[tuple[str, str, str, str, str]], width: int) -> int | None:
    """The characters the preset column can have in a table `width` wide (None: no limit known): what the
    other columns (each as wide as its widest cell or its header, one space before each) leave."""
    if width <= 0 or not cells:
        return None
    fixed = 1  # the mark column
    for i, label in enumerate(COLUMNS):
        if label != "preset":
            extra = 2 if label == "state" else 0  # the state's mark and its space
            fixed += 1 + max(len(label), *(len(c[i]) + extra for c in cells))
    return width - fixed - 1


def clip(text: str, room: int | None) -> str:
    return text if room is None or len(text) <= room else text[:max(room - 1, 0)] + "…"
