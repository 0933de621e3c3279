"""The TUI's sweep screen: the live table from the trials' run stores, and Enter opens a trial."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.widgets import DataTable

from cockpit.tui.messages import RunChosen
from cockpit.tui.screens.sweep import SweepScreen, progress
from engine.atomic_write import write_text_atomic
from engine.sweep.config import SweepFile, sweep_json
from engine.sweep.table import SWEEP_JSON, TrialRow

from .test_sweep_table import _trial


class _Host(App):
    def __init__(self, runs_dir: Path):
        super().__init__()
        self.runs_dir, self.chosen = runs_dir, []

    def on_mount(self) -> None:
        self.push_screen(SweepScreen(self.runs_dir))

    def on_run_chosen(self, message: RunChosen) -> None:
        self.chosen.append(message.path)


async def test_sweep_screen_shows_the_table_and_opens_a_trial(tmp_path):
    runs = tmp_path / "runs"
    first = _trial(runs, "sgd", 0, [0.5, 0.8, 0.90])
    _trial(runs, "sgd", 1, [0.6, 0.85, 0.94])
    _trial(runs, "sgd", 2, [0.4, 0.7, 0.80])
    sweep = SweepFile(name="s", seeds=[0, 1, 2], target=0.85, variant=[{"name": "sgd", "guide": 0.942}])
    (runs / "sweeps" / "s").mkdir(parents=True)
    write_text_atomic(runs / "sweeps" / "s" / SWEEP_JSON, sweep_json(sweep, {}))
    app = _Host(runs)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        results = screen.query_one("#sweep-table", DataTable)
        assert results.get_row_at(0)[:3] == ["sgd", "88.00 ± 7.21%", "94.2%"]
        trials = screen.query_one("#sweep-trials", DataTable)
        assert trials.row_count == 3
        await pilot.press("enter")
        await pilot.pause()
    assert app.chosen == [runs / first.run_id]


def test_progress_reads_epochs_of_the_total():
    row = TrialRow("r", "c", 0, 1, "running", None, 2.0, 4, None, None, None)
    assert progress(row) == "█████░░░░░ 2/4"
    assert progress(TrialRow("r", "c", 0, 1, "created", None, 0.0, 0, None, None, None)) == "starting"


async def test_f6_opens_the_sweep_screen_in_the_cockpit(runs_dir):
    from cockpit.tui.app import CockpitApp

    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("f6")
        await pilot.pause()
        assert app.current_mode == "sweeps" and isinstance(app.screen, SweepScreen)
        assert "no sweep" in str(app.screen.query_one("#sweep-head").render())
