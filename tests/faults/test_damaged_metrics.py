"""A text value among run.db's metrics (SQLite keeps a string in a REAL column) is a damaged store for
every reader alike: `runs` (and --json) and the TUI list the run as unreadable with the metric and step,
report, compare and attach exit 2 with that one line, and no reader drops the value silently."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cockpit.core.reading import RunReader
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.dashboard import DashboardScreen
from engine.store import Run, StoreError

from ..conftest import cockpit
from .test_store_edges import finished_run, one_line

WHERE = "metric 'train_loss' at step 3 has the value 'abc', not a number"


def _poison(run: Run, name: str = "train_loss", step: int = 3, column: str = "value", text: str = "abc") -> None:
    con = sqlite3.connect(run.path / "run.db")
    con.execute(f"UPDATE metrics SET {column} = ? WHERE name = ? AND step = ?", (text, name, step))
    con.commit()
    con.close()


@pytest.mark.parametrize("column, name, message", [
    ("value", "train_loss", WHERE),
    ("value", "test_acc", "metric 'test_acc' at step 4 has the value 'abc'"),
    ("epoch", "train_loss", "metric 'train_loss' at step 3 has the epoch 'abc'"),
])
def test_every_store_read_of_a_text_metric_raises_the_same_error(runs_dir, column, name, message):
    run = finished_run(runs_dir)
    _poison(run, name, 4 if name == "test_acc" else 3, column)
    run = Run(run.path, readonly=True)
    reads = [lambda: run.metrics_since(0), lambda: run.evaluations(name)]
    if column == "value":
        reads += [lambda: run.series(name), lambda: run.best(name)]
        if name == "test_acc":  # the last row of its metric
            reads.append(run.last_values)
    else:
        reads.append(run.last_epoch)
    for read in reads:
        with pytest.raises(StoreError, match=message):
            read()
    assert run.series("other") == [] and run.last_step() == 4


def test_runs_and_runs_json_list_it_unreadable_naming_metric_and_step(runs_dir):
    """The listing reads the accuracies (best acc): a text there makes the row unreadable, in the same words."""
    good = finished_run(runs_dir, "good")
    bad = finished_run(runs_dir, "bad")
    _poison(bad, "test_acc", 4)
    said = "metric 'test_acc' at step 4 has the value 'abc', not a number"
    res = cockpit("runs")
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert f"{bad.run_id} is unreadable: run.db is damaged: {said}" in res.stdout
    rows = {r["run_id"]: r for r in map(json.loads, cockpit("runs", "--json").stdout.splitlines())}
    assert rows[good.run_id]["state"] == "finished"
    assert rows[bad.run_id]["state"] == "unreadable" and said in rows[bad.run_id]["error"]


@pytest.mark.parametrize("command", [["report", "RUN", "--format", "md"], ["report", "RUN", "--format", "html"],
                                     ["compare", "RUN", "GOOD"], ["attach", "RUN"]])
def test_report_compare_and_attach_exit_2_with_one_line(runs_dir, command):
    good = finished_run(runs_dir, "good")
    bad = finished_run(runs_dir, "bad")
    _poison(bad)
    res = cockpit(*[a.replace("RUN", bad.run_id).replace("GOOD", good.run_id) for a in command], timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert one_line(res.stderr) and f"{bad.path / 'run.db'} is damaged: {WHERE}" in res.stderr
    assert not list(bad.path.glob("report.*")), "nothing half-written"


async def test_the_dashboard_says_unreadable_once(runs_dir):
    bad = finished_run(runs_dir, "bad")
    _poison(bad)
    reading = RunReader(Run(bad.path, readonly=True)).read()
    assert reading.damaged and WHERE in reading.error
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        app.watch_run(bad.path)
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        for _ in range(100):
            if any(WHERE in str(n.message) for n in app._notifications):
                break
            await pilot.pause(0.05)
        said = [n for n in app._notifications if WHERE in str(n.message)]
        assert len(said) == 1 and said[0].title == "unreadable" and said[0].severity == "error"
        await pilot.pause(0.6)  # more polls: still said once
        assert len([n for n in app._notifications if WHERE in str(n.message)]) == 1
