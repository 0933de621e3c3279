"""A slower refresh for slow links: `cockpit --refresh SECONDS` and the dashboard's `f` key set how
often the views read and redraw a run, and the run bar says the rate."""

from __future__ import annotations

from cockpit.tui.app import CockpitApp
from cockpit.tui.refresh import RATES, next_rate
from cockpit.tui.widgets.run_bar import RunBar

from .conftest import cockpit
from .test_tui import FIXTURE_ID, dashboard_loaded, make_fixture_run


def test_the_rates_cycle_slower_then_back_to_the_fastest():
    seen, rate = [], RATES[0]
    for _ in RATES:
        seen.append(rate)
        rate = next_rate(rate)
    assert seen == sorted(seen) and rate == RATES[0]
    assert next_rate(3.0) == 5.0 and next_rate(60.0) == RATES[0], "a rate from --refresh goes to the next slower one"


async def test_refresh_sets_the_poll_rate_and_f_cycles_it(runs_dir):
    make_fixture_run(runs_dir).close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID, refresh=2.0)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        bar = dash.query_one(RunBar)
        assert dash._poll_timer._interval == 2.0 and "↻ 2 s" in str(bar.render())
        await pilot.press("f")
        await pilot.pause()
        assert app.refresh_s == 5.0 and dash._poll_timer._interval == 5.0
        assert "↻ 5 s" in str(bar.render()), "the status line says the new rate"
        assert "every 5 s" in app.last_notice.message
        await pilot.press("f")
        await pilot.pause()
        assert dash._poll_timer._interval == RATES[0] and "↻ 0.4 s" in str(bar.render())


def test_refresh_option_reaches_the_tui_and_bad_values_exit_2(runs_dir, monkeypatch):
    from typer.testing import CliRunner

    from cockpit.cli.commands import app

    started = []
    monkeypatch.setattr(CockpitApp, "run", lambda self, **kw: started.append(self.refresh_s))
    res = CliRunner().invoke(app, ["--runs-dir", str(runs_dir), "--refresh", "2.5"])
    assert res.exit_code == 0, res.output
    assert started == [2.5]
    bad = cockpit("--refresh", "0")
    assert bad.returncode == 2 and "--refresh" in bad.stderr and "Traceback" not in bad.stderr
