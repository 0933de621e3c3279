"""The dashboard uses a big terminal: from 120x32 its panels are charts with axes over the whole run,
sized to the screen, following a live run; at 80x24 the compact panels stay (and plotext is not
loaded). The history behind the charts keeps every spike in bounded memory."""

from __future__ import annotations

import math

from cockpit.core.chart_data import nice_ticks
from cockpit.core.history import History, extremes
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.chart_mode import plot_rows, wants_charts
from cockpit.tui.widgets.system_panel import SystemPanel
from cockpit.tui.widgets.trace_panel import TracePanel
from engine.contracts import format_metric
from engine.store import Run

from .test_tui import FIXTURE_ID, add_system_metrics, dashboard_loaded, live_fixture, make_fixture_run, wait_for


def test_history_keeps_every_spike_in_bounded_memory():
    hist = History(cap=64)
    noise = [(s, 1.0 + 0.01 * math.sin(s)) for s in range(1, 10_001)]
    noise[7776] = (7777, 50.0)  # one grad-norm spike among 10,000 windows
    noise[3000] = (3001, -4.0)  # and one dip
    for a in range(0, 10_000, 250):  # as polls hand them over
        hist.add({"grad_norm": noise[a:a + 250]})
    kept = hist.points("grad_norm")
    assert len(kept) <= 64
    assert (7777, 50.0) in kept and (3001, -4.0) in kept, "extremes survive every halving"
    assert kept[0][0] == 1 and kept[-1][0] == 10_000 and hist.last_step == 10_000, "the whole run is spanned"
    assert [s for s, _ in kept] == sorted(s for s, _ in kept)
    hist.add({"loss": [(1, float("nan")), (2, 0.5)]})
    assert hist.points("loss") == [(2, 0.5)], "non-finite values are not drawn"


def test_extremes_keeps_short_series_whole():
    pts = [(s, float(s % 3)) for s in range(10)]
    assert extremes(pts, 5) == pts
    long = [(s, float(s % 3)) for s in range(100)]
    thinned = extremes(long, 5)
    assert len(thinned) <= 12 and thinned[0] == long[0] and thinned[-1] == long[-1]
    assert {v for _, v in thinned} == {0.0, 2.0}, "each span keeps its lowest and highest"


def test_axes_get_round_ticks():
    assert nice_ticks(0, 32, 5) == [0, 10, 20, 30]
    assert nice_ticks(0, 80_000, 5) == [0, 20_000, 40_000, 60_000, 80_000]
    assert nice_ticks(16, 85, 4) == [20, 40, 60, 80]
    assert nice_ticks(3, 3) == [3]


def test_charts_start_where_the_terminal_has_room():
    assert not wants_charts(80, 24) and not wants_charts(119, 50) and not wants_charts(200, 31)
    assert wants_charts(120, 36) and wants_charts(200, 50)
    # 200x50: two rows of four panels and the events (9 rows) fill the 45 rows of the body
    assert plot_rows(45, 8, 4, 9) == 15
    # 120x36: three rows of panels fill the body; the events are below the fold
    assert plot_rows(30, 8, 3, 17) == 7


async def test_panels_are_charts_of_the_stored_values_at_200x50(runs_dir):
    run = make_fixture_run(runs_dir)
    add_system_metrics(run)
    expected = {n: [(s, v) for s, v in run.series(n)] for n in ("train_loss", "test_acc", "images_per_s", "system/cpu")}
    run.close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(200, 50)) as pilot:
        dash = await dashboard_loaded(pilot)
        await wait_for(pilot, lambda: dash.charts_on and dash.query_one("#panel-loss", TracePanel).chart.drawn,
                       10, what="the charts")
        loss = dash.query_one("#panel-loss", TracePanel)
        assert loss.query_one(".trace-lines").region.height == 0, "the lines give way to the chart"
        drawn = {label: (xs, ys) for label, xs, ys in loss.chart.drawn}
        assert drawn["train"] == ([s for s, _ in expected["train_loss"]], [v for _, v in expected["train_loss"]])
        assert set(drawn) == {"train", "val", "test"}
        acc = {label: (xs, ys) for label, xs, ys in dash.query_one("#panel-acc", TracePanel).chart.drawn}
        assert acc["test"][1] == [v * 100 for _, v in expected["test_acc"]], "accuracy drawn in percent"
        speed = dash.query_one("#panel-speed", TracePanel).chart.drawn
        assert [label for label, _, _ in speed] == ["images/s"], "step ms has another unit: not on this axis"
        system = {label: ys for label, _, ys in dash.query_one(SystemPanel).chart.drawn}
        assert set(system) == {"cpu", "ram", "disk"}, "the percentages share one axis; GB and workers do not"
        assert system["cpu"] == [v * 100 for _, v in expected["system/cpu"]]
        legend = str(loss.chart.legend.render())
        assert f"train {format_metric('train_loss', expected['train_loss'][-1][1])}" in legend
        # sized to the screen: every panel in view, with the events under them
        body = dash.query_one("#dash-body")
        assert all(p.region.bottom <= body.region.bottom for p in dash._chart_panels())
        assert dash.query_one("#events").region.bottom <= body.region.bottom


async def test_80x24_keeps_the_compact_panels_and_a_resize_switches(runs_dir):
    make_fixture_run(runs_dir).close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        loss = dash.query_one("#panel-loss", TracePanel)
        assert not dash.charts_on and loss.chart is None, "no chart made (plotext not loaded) at 80x24"
        assert loss.line("train_loss").region.height == 1
        await pilot.resize_terminal(200, 50)
        await wait_for(pilot, lambda: dash.charts_on and loss.chart.drawn, 10, what="charts after a resize")
        assert loss.line("train_loss").region.height == 0 and loss.chart.plot.region.height >= 10
        await pilot.press("r")  # resized while the runs list is shown: the dashboard fits when it comes back
        await pilot.pause()
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.press("d")
        await wait_for(pilot, lambda: not dash.charts_on, 5, what="compact panels again")
        await pilot.pause()
        assert loss.chart.region.height == 0 and loss.line("train_loss").region.height == 1


async def test_charts_follow_a_live_run(runs_dir):
    live = live_fixture(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        dash = await dashboard_loaded(pilot)
        loss = dash.query_one("#panel-loss", TracePanel)
        await wait_for(pilot, lambda: loss.chart is not None and loss.chart.drawn, 10, what="the charts")
        live.add_metrics([(s, s / 8, "train_loss", 0.2) for s in range(33, 41)])

        def train_steps():
            return next((xs for label, xs, _ in loss.chart.drawn if label == "train"), [])

        await wait_for(pilot, lambda: train_steps()[-1] == 40, 10, what="the chart to grow")
        assert train_steps() == list(range(1, 41))
    live.close()


def test_compact_sparklines_span_their_width_early_in_a_run():
    from cockpit.core.sparkline import sparkline

    assert len(sparkline([1.0, 2.0, 3.0, 4.0], 10, honest=True)) == 4, "without fill: one bar a value"
    filled = sparkline([1.0, 2.0, 3.0, 4.0], 10, honest=True, fill=True)
    assert len(filled) == 10 and filled[0] == "▁" and filled[-1] == "█"
    assert [len(run) for run in "".join(c if i == 0 or c == filled[i - 1] else f" {c}" for i, c in enumerate(filled)).split()] \
        in ([3, 2, 3, 2], [2, 3, 2, 3]), "each value an equal share of the columns"
    assert sparkline([0.5], 10, fill=True) == "▄", "one value is one bar, not a made-up flat line"
