"""Several runs at once: marked in the runs list, `o` overlays one metric's curves in one chart, live
(a run still training keeps growing), with a legend of run ids, states, latest values and the spec
fields in which the runs differ."""

from __future__ import annotations

import shutil

from cockpit.core.overlay import RunsFollower, differing_fields, flat_spec
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.overlay import OverlayScreen
from engine.store import Run

from .test_tui import FIXTURE_ID, live_fixture, make_fixture_run, wait_for
from .test_tui_views import IDS, notice, runs_list, three_runs


def test_the_legend_names_the_fields_that_differ(runs_dir):
    paths = three_runs(runs_dir)
    fields = differing_fields([flat_spec(p) for p in paths])
    assert fields == [{"optim.lr": "0.05"}, {"optim.lr": "0.1"}, {"optim.lr": "0.15"}], \
        "the lr only (name and every equal field left out), in 6 significant digits"
    assert differing_fields([{"a": 1, "b": [1, 2]}, {"a": 1}]) == [{"b": "[1,2]"}, {"b": "-"}], "a missing field is '-'"
    close = differing_fields([{"lr": 0.1}, {"lr": 0.1 + 1e-12}])
    assert close[0]["lr"] != close[1]["lr"], "values that differ past 6 digits are shown in full, never as equal"


def test_the_follower_hands_over_new_points_once_and_survives_a_deleted_run(runs_dir):
    paths = three_runs(runs_dir)
    follower = RunsFollower(paths[:2])
    first = follower.poll()
    stored = Run(paths[0], readonly=True)
    assert [p.run_id for p in first] == list(IDS[:2])
    assert list(first[0].points["train_loss"]) == stored.series("train_loss")
    assert first[0].state == "finished" and first[0].steps_per_epoch == 8
    stored.close()
    assert all(not p.points for p in follower.poll()), "nothing new, nothing handed over"
    follower.close()
    shutil.rmtree(paths[1])
    again = RunsFollower(paths[:2]).poll()
    assert again[1].error and again[0].points, "a deleted run is named, the others go on"


async def test_mark_two_runs_and_overlay_them_live(runs_dir):
    make_fixture_run(runs_dir).close()
    live = live_fixture(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        runs = await runs_list(pilot, 2)
        await pilot.press("o")
        await pilot.pause()
        assert "overlay needs two or more marked runs (0 marked)" in notice(app)
        await pilot.press("space", "space", "o")
        ov = await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen) and app.screen.metric and app.screen,
                            15, what="the overlay")
        assert [r.run_id for r in ov.runs] == runs.marked == [live.run_id, FIXTURE_ID]
        assert ov.metric == "test_acc" and ov.unit == "epoch"
        stored = Run(runs_dir / FIXTURE_ID, readonly=True)
        xs, ys = ov.curve(ov.runs[1])
        assert (xs, ys) == ([s / 8 for s, _ in stored.series("test_acc")], [v * 100 for _, v in stored.series("test_acc")])
        stored.close()
        legend = str(ov.query_one("#ov-legend").render())
        assert live.run_id in legend and FIXTURE_ID in legend and "75.00%" in legend
        assert "(the same spec as the others)" in legend, "two fixtures with one spec: nothing to tell apart"
        # the live run keeps growing
        live.add_metrics([(40, 5.0, "test_acc", 0.9)])
        await wait_for(pilot, lambda: ov.curve(ov.runs[0])[0][-1] == 5.0, 10, what="the live run's new point")
        assert "90.00%" in str(ov.query_one("#ov-legend").render())
        await pilot.press("x")
        assert ov.unit == "step" and ov.curve(ov.runs[0])[0][-1] == 40
        await pilot.press("m")
        assert ov.metric == "train_loss"
        await pilot.press("y")
        assert ov.log_y is True
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is runs
    live.close()


def test_snapshot_overlay_three_runs(snap_compare, runs_dir):
    three_runs(runs_dir)

    async def overlaid(pilot):
        await runs_list(pilot, 3)
        await pilot.press("space", "space", "space", "o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, OverlayScreen) and pilot.app.screen.metric, 15,
                       what="the overlay")
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir), terminal_size=(80, 24), run_before=overlaid)


async def test_without_colour_each_run_is_drawn_with_its_letter(runs_dir, monkeypatch):
    from cockpit.tui.plotting import line_style

    assert line_style(0, False) == ("braille", "■") and line_style(1, True) == ("+", "+")
    monkeypatch.setenv("NO_COLOR", "1")
    three_runs(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_list(pilot, 3)
        await pilot.press("space", "space", "o")
        ov = await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen) and app.screen.metric and app.screen,
                            15, what="the overlay")
        await pilot.pause()
        legend = str(ov.query_one("#ov-legend").render()).splitlines()
        assert legend[0].startswith("A ✓ 20260103") and legend[1].startswith("B ✓ 20260102"), legend
        chart = "\n".join(str(line) for line in ov.query_one("#ov-chart").render().split())
        assert "A" in chart and "B" in chart, "the curves are drawn with the runs' letters"
