"""Small things a user reads at 80 columns: the run bar's hint is never cut, the runs list's start time is
whole, a trace's label and value stand apart, and the set-LR dialog says the value is the base LR and
what the schedule makes of it now."""

from __future__ import annotations

import math
import os
import re
import socket

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static

from cockpit.core.formats import fmt_started
from cockpit.core.lr_now import lr_now
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.dialogs import SetLRScreen
from cockpit.tui.widgets.run_bar import RunBar
from cockpit.tui.widgets.trace_panel import TracePanel
from engine.spec import load_spec
from engine.store import Run

from .test_tui import T0, dashboard_loaded, make_fixture_run, wait_for
from .test_tui_views import runs_list


class Bar(App):
    def compose(self) -> ComposeResult:
        yield RunBar()


RUNNING_META = {"device": "CPU (2 cores, 1 threads)", "total_steps": 3200, "steps_per_epoch": 16, "epochs": 200}


@pytest.mark.parametrize("width", [80, 64])
async def test_the_run_bar_keeps_its_hint_whole_and_gives_way_with_the_device(width):
    async with Bar().run_test(size=(width, 4)) as pilot:
        bar = pilot.app.query_one(RunBar)
        bar.show("20261205-181849-quickstart", "running", RUNNING_META, 496, {}, 300.0, 60.0)
        await pilot.pause()
        head = str(bar.render()).splitlines()[0]
    assert len(head) <= width and "…" not in head, head
    assert "20261205-181849-quickstart" in head and "keeps running" in head or "leaves it running" in head, head
    if width == 80:
        assert head.endswith("CPU  q leaves it running"), "the device's detail gives way first"


async def test_the_run_bar_shows_a_failed_runs_reason_before_its_device():
    async with Bar().run_test(size=(80, 4)) as pilot:
        bar = pilot.app.query_one(RunBar)
        meta = dict(RUNNING_META, error="CUDA was asked for (train.device=cuda) and none is available")
        bar.show("20261205-181849-quickstart", "failed", meta, 0, {}, None, 1.0)
        await pilot.pause()
        head = str(bar.render()).splitlines()[0]
    assert "CPU" not in head and "CUDA was asked for" in head, head


def long_preset_runs(runs_dir, name: str) -> list[str]:
    ids = []
    for i, rid in enumerate([f"20260101-120000-{name}", "20260102-120000-fixture"]):
        run = make_fixture_run(runs_dir, rid)
        run.set_meta(preset="presets/sgd_cosine_efficientnet_b0.toml", started=T0 + 86400 * i)
        run.close()
        ids.append(rid)
    return ids


@pytest.mark.parametrize("name", ["effnet", "sgd_cosine_efficientnet_b0"])
async def test_the_runs_list_never_cuts_the_start_time_or_the_run_id(runs_dir, name):
    """At 80 columns the preset gives way: shortened (and marked so), or, beside an id as long as this
    preset's name, left out; the start time and the id are whole. With room, the preset is whole."""
    ids = long_preset_runs(runs_dir, name)
    app = CockpitApp(runs_dir=runs_dir, run=ids[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        screen = await runs_list(pilot, 2)
        table = screen.query_one(DataTable)
        await pilot.pause()
        header, *lines = [table.render_line(y).text for y in range(3)]
        for i, rid in enumerate(reversed(ids)):
            line = next(x for x in lines if rid in x)
            assert line.rstrip().endswith(fmt_started(T0 + 86400 * (1 - i))), line
            if name == "effnet":
                assert "sgd_cosine_e" in line and "…" in line, line
        assert ("preset" in header) == (name == "effnet"), header
        await pilot.resize_terminal(130, 30)
        await pilot.pause()
        await pilot.pause()
        assert any("sgd_cosine_efficientnet_b0 " in table.render_line(y).text for y in range(1, 3)), "room: whole"


class Panel(App):
    def compose(self) -> ComposeResult:
        yield TracePanel("Difficulty", [("p10", "difficulty/p10"), ("max", "difficulty/max")], id="panel")


async def test_a_trace_label_and_a_value_as_wide_as_its_column_stand_apart():
    async with Panel().run_test(size=(40, 6)) as pilot:
        panel = pilot.app.query_one(TracePanel)
        panel.update_from({"difficulty/p10": [0.0009, 0.000433], "difficulty/max": [4.0, 3.5]})
        await pilot.pause()
        p10 = str(panel.line("difficulty/p10").render())
    assert re.match(r"p10 +0\.000433 ", p10), p10


# ----------------------------------------------------------------------------------- set LR


def test_lr_now_is_the_base_times_the_schedules_factor_at_the_last_step():
    spec = {"optim": {"lr": 0.2}, "schedule": {"name": "cosine"}, "swa": {"lr": 0.05}}
    now = lr_now(spec, [], (40, 0.158))
    assert (now.base, now.schedule, round(now.factor, 2), now.swa) == (0.2, "cosine", 0.79, False)
    assert now.text() == "the value is the base LR: 0.2 x cosine 0.79 = 0.158 now (step 40)"
    later = [{"kind": "set_lr", "step": 41, "data": '{"lr": 0.1, "swa": false}'}]  # after the step recorded
    assert lr_now(spec, later, (40, 0.158)).text() == "the value is the base LR: 0.1 x cosine 0.79 = 0.079 now (step 40)"
    earlier = [{"kind": "set_lr", "step": 30, "data": '{"lr": 0.1, "swa": false}'}]  # the step recorded used it
    assert round(lr_now(spec, earlier, (40, 0.079)).factor, 2) == 0.79
    swa = [{"kind": "swa_started", "step": 45, "data": '{"why": "command"}'}]
    assert lr_now(spec, swa, (40, 0.158)).text() == "the value is the SWA LR, now 0.05"
    assert lr_now(spec, swa, (50, 0.04)).text() == "the value is the SWA LR: 0.05 x SWA 0.8 = 0.04 now (step 50)"


def live_cosine_run(runs_dir) -> Run:
    """A live run at step 40 of 100 on a cosine schedule from a base LR of 0.2: its LR now is 0.2 x 0.79."""
    spec = load_spec(None, ["name=cos", "optim.lr=0.2", "schedule.name=cosine", "train.epochs=10"])
    run = Run.create(runs_dir, spec, preset="quickstart")
    run.set_meta(state="running", pid=os.getpid(), host=socket.gethostname(), started=T0, total_steps=100,
                 steps_per_epoch=10, epochs=10)
    rows = [(s, s / 10, "lr", 0.2 * 0.5 * (1 + math.cos(math.pi * s / 100))) for s in range(1, 41)]
    run.add_metrics(rows + [(s, s / 10, "train_loss", 2.0 - s / 40) for s in range(1, 41)])
    run.add_event("started", "training", step=0)
    return run


async def test_the_set_lr_dialog_offers_the_base_lr_and_says_what_the_schedule_makes_of_it(runs_dir):
    run = live_cosine_run(runs_dir)
    run.close()
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        await pilot.press("l")
        dialog = await wait_for(pilot, lambda: isinstance(app.screen, SetLRScreen) and app.screen, 5, what="the dialog")
        await pilot.pause()
        factor = 0.5 * (1 + math.cos(math.pi * 40 / 100))
        assert dialog.query_one("#lr-value", Input).value == "0.2", "the base LR, not the 0.158 the schedule made of it"
        said = str(dialog.query_one("#lr-now", Static).render())
    assert f"0.2 x cosine {factor:.3g} = {0.2 * factor:.3g} now" in said and "base LR" in said, said


async def test_the_runs_list_shows_brackets_in_a_name_as_they_are(runs_dir):
    """A cell given as text is parsed as markup: `[b]odd` was shown as a bold `odd`."""
    run = make_fixture_run(runs_dir, "20260101-120000-brackets")
    run.set_meta(preset="presets/[b]odd.toml")
    run.close()
    app = CockpitApp(runs_dir=runs_dir, run="20260101-120000-brackets")
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        screen = await runs_list(pilot, 1)
        await pilot.pause()
        line = screen.query_one(DataTable).render_line(1).text
    assert " [b]odd " in line, line
