"""The cockpit's views beyond the editor and the dashboard's panels: keys that say why
they cannot act, finishing passes on a finished run, honest sparklines, full charts, the runs
list's marks and actions, the comparison, the log view, the preset picker, notices instead of
toasts, NO_COLOR focus, 80x24. Pilot on the real app over fixture stores; slow ones drive real
processes (a pass, the binary in tmux)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Log, OptionList, Static

from cockpit.core.actions import RunFacts, why_not
from cockpit.core.chart_data import Window
from cockpit.core.sparkline import sparkline
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.dialogs import ConfirmScreen, LoadSpecScreen
from cockpit.tui.screens.runs import RunsScreen
from cockpit.tui.widgets.notice_line import NoticeLine
from cockpit.tui.widgets.trace_panel import TracePanel
from engine.store import Run

from .conftest import ROOT, TINY_SETS, cockpit
from .test_tui import FIXTURE_ID, commands, dashboard_loaded, make_fixture_run, wait_for

IDS = (FIXTURE_ID, "20260102-120000-other-long-name", "20260103-120000-third")


def three_runs(runs_dir: Path) -> list[Path]:
    """Three finished fixture runs; the second and third differ from the first in a spec field and a result."""
    from engine.spec import dump_spec

    paths = []
    for i, rid in enumerate(IDS):
        run = make_fixture_run(runs_dir, rid)
        if i:
            spec = run.spec().model_copy(deep=True)
            spec.optim.lr = 0.05 * (i + 1)
            (run.path / "spec.toml").write_text(dump_spec(spec), encoding="utf-8")
            run.add_metrics([(32, 4.0, "test_acc", 0.75 + 0.02 * i)])
        paths.append(run.path)
        run.close()
    return paths


def notice(app) -> str:
    n = app.last_notice
    return f"{n.title}: {n.message}" if n else ""


async def runs_list(pilot, n: int) -> RunsScreen:
    app = pilot.app
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.query_one(DataTable).row_count == n,
                   10, what="the runs list")
    return app.screen


# ------------------------------------------------------------------------------ headless logic


def test_why_a_key_cannot_act(tmp_path):
    facts = RunFacts(path=tmp_path, state="finished", val_size=64)
    assert "the run is finished" in why_not("stop", facts) and "the run is finished" in why_not("set_lr", facts)
    assert why_not("tta", facts) == "tta needs a checkpoint and this run has none"
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"x")
    assert why_not("tta", facts) is None and why_not("calibrate", facts) is None, "a finished run with a checkpoint"
    facts.val_size = 0
    assert "validation split" in why_not("calibrate", facts), "no validation split: calibrate says so"
    facts.state = "running"
    assert "validation split" in why_not("calibrate", facts), "...live too (the worker would fail it)"
    assert why_not("tta", facts) is None and why_not("stop", facts) is None and why_not("continue", facts)
    facts.running["tta"] = time.monotonic()
    assert "already running" in why_not("tta", RunFacts(tmp_path, "finished", 64, running={"tta": 0.0}))


def test_a_sparklines_range_holds_every_value_it_stands_for():
    """The low end rounds down and the high end up: 0.55% is never beside a range that ends at 0.5%."""
    from cockpit.core.sparkline import span

    assert span([0.002, 0.00549], percent=True) == "0.2%‥0.6%"
    assert span([2.3456, 2.5]) == "2.34‥2.5" and span([0.61, 0.8437], percent=True) == "61%‥85%"
    assert span([0.007, 0.009], percent=True) == "0.7%‥0.9%", "float noise (9.000000000000002) is not rounded up"
    assert span([999.5, 1200]) == "999‥1.2k" and span([0.5, 0.5]) == "0.5"


def test_sparklines_do_not_magnify_noise():
    lr = [0.1 - 0.004 * i / 9 for i in range(10)]  # 0.1 -> 0.096: a 4% change
    drawn = sparkline(lr, 10, honest=True)
    assert set(drawn) <= set("▃▄▅"), f"a 4% fall stays small, not full height: {drawn}"
    assert sparkline(lr, 10)[0] == "█" and sparkline(lr, 10)[-1] == "▁", "min-max scaling (the live view's) would draw it full height"
    loss = [2.3, 1.5, 1.0, 0.6, 0.3]
    assert sparkline(loss, 5, honest=True) == sparkline(loss, 5), "a real fall still spans the height"
    assert set(sparkline([1200, 1240, 1190, 1230], 4, honest=True)) <= set("▃▄▅"), "throughput noise stays small"


def test_chart_window_zooms_and_pans_inside_the_run():
    w = Window()
    w.fit(100)
    assert (w.lo, w.hi) == (0, 100)
    w.zoom(0.5, 100)
    assert (w.lo, w.hi) == (25, 75) and w.zoomed
    w.pan(1.0, 100)
    assert (w.lo, w.hi) == (50, 100), "panning stops at the last step"
    w.pan(-5, 100)
    assert w.lo == 0
    w.zoom(100, 100)
    assert (w.lo, w.hi) == (0, 100), "zooming out stops at the whole run"
    w.fit(200)
    assert w.hi == 100, "a zoomed view stays put while a live run grows"
    w.reset(200)
    assert (w.lo, w.hi) == (0, 200)


# ------------------------------------------------------------------------------ dashboard keys


async def test_dead_keys_on_a_finished_run_say_why(runs_dir):
    make_fixture_run(runs_dir).close()  # no checkpoints in the fixture
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        footer_keys = {b.action for _, b, enabled, _ in
                       (v for v in dash.active_bindings.values()) if enabled}
        assert "stop" not in footer_keys and "pause" not in footer_keys, "live-only keys are hidden on a finished run"
        for key, words in (("k", "calibrate needs a checkpoint"), ("t", "tta needs a checkpoint"),
                           ("w", "cannot start SWA: the run is finished"), ("l", "cannot change the LR")):
            await pilot.press(key)
            await pilot.pause()
            assert words in notice(app), (key, notice(app))
        assert app.screen is dash and commands(runs_dir / FIXTURE_ID) == []


async def test_calibrate_is_explained_on_a_run_without_a_validation_split(runs_dir):
    from engine.spec import dump_spec, load_spec

    run = make_fixture_run(runs_dir)
    (run.path / "spec.toml").write_text(dump_spec(load_spec(None, ["data.val_size=0"])), encoding="utf-8")
    (run.checkpoints).mkdir(exist_ok=True)
    (run.checkpoints / "best.pt").write_bytes(b"not read by this test")
    run.close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        assert dash.check_action("calibrate", ()) is None, "shown dimmed"
        assert dash.check_action("tta", ()) is True, "TTA needs no validation split"
        await pilot.press("k")
        await pilot.pause()
        assert "calibrate fits on a validation split and this run has none" in notice(app)


async def test_notices_replace_toasts_and_the_fold_is_named(runs_dir):
    make_fixture_run(runs_dir).close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        await pilot.pause(0.3)
        line = dash.query_one(NoticeLine)
        assert line.hint.startswith("▼ more below:") and "Finishing passes" in line.hint
        assert "Events (1 alarm)" in line.hint, "an alarm below the fold is named"
        assert "Loss" not in line.hint, "what is on screen is not listed"
        assert dash.sub_title == "dashboard", "at 80 columns the header leaves the run id to the run bar"
        await pilot.press("s")
        await pilot.pause(0.4)
        assert "cannot stop" in str(line.render())
        assert not [t for t in app.screen.query("Toast") if t.display], "no toast over the panels"
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause(0.5)
        assert "Finishing passes" not in dash.query_one(NoticeLine).hint


async def test_enter_opens_a_full_chart_with_zoom_log_and_markers(runs_dir):
    from cockpit.tui.screens.chart import ChartScreen

    make_fixture_run(runs_dir).close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        dash.query_one("#panel-lr", TracePanel).focus()
        await pilot.press("enter")
        chart = await wait_for(pilot, lambda: isinstance(app.screen, ChartScreen) and app.screen.data.series
                               and app.screen, 10, what="the chart")
        assert set(chart.data.series) == {"lr", "lr/default", "lr/stem"}
        assert (22, "set-lr") in chart.data.markers and (24, "SWA") in chart.data.markers
        head = lambda: str(chart.query_one("#chart-head", Static).render())  # noqa: E731
        assert "steps 0–32 (all)" in head() and "set-lr@22" in head()
        log = chart.log_y
        await pilot.press("plus", "right", "y", "b", "m")
        await pilot.pause()
        assert chart.window.zoomed and chart.window.lo > 0 and chart.log_y is not log and chart.marker == "hd"
        assert "zoomed" in head() and "set-lr@" not in head(), "m hides the markers"
        await pilot.press("0", "escape")
        await pilot.pause()
        assert app.screen is dash


async def test_log_view_follows_worker_log(runs_dir):
    from cockpit.tui.screens.log import LogScreen

    run = make_fixture_run(runs_dir)
    (run.path / "worker.log").write_text("decoding train/: 0/50000\ndecoding train/: 25000/50000\n", encoding="utf-8")
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        await pilot.press("v")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen, 5, what="the log")
        log = screen.query_one(Log)
        await wait_for(pilot, lambda: log.line_count >= 2, 5, what="the log's lines")
        with (run.path / "worker.log").open("a", encoding="utf-8") as f:
            f.write("decoding train/: 50000/50000\nepoch 1\n")
        await wait_for(pilot, lambda: log.line_count >= 4, 5, what="the appended lines")
        assert "50000/50000" in "\n".join(log.lines)
    run.close()


# ------------------------------------------------------------------------------ runs list


async def test_mark_three_runs_and_compare_them(runs_dir):
    from cockpit.tui.screens.compare import CompareScreen

    three_runs(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        runs = await runs_list(pilot, 3)
        await pilot.press("c")
        await pilot.pause()
        assert "compare needs two or more marked runs (0 marked)" in notice(app)
        await pilot.press("space", "space", "space")
        await pilot.pause()
        assert runs.marked == list(reversed(IDS)), "marking moves down the list"
        assert "3 marked" in str(runs.query_one("#runs-head", Static).render())
        await pilot.press("c")
        cmp = await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.data and app.screen,
                             15, what="the comparison")
        assert [r["run_id"] for r in cmp.data["runs"]] == list(reversed(IDS))
        from rich.console import Console

        console = Console(width=78, record=True, file=open(os.devnull, "w"))
        console.print(cmp.tables)
        text = console.export_text()
        for rid in IDS:
            assert rid in text, "every id in full"
        assert "test accuracy" in text and "Results side by side" in text
        name = cmp.curve_names[cmp.metric_index]
        await pilot.press("m")
        assert cmp.curve_names[cmp.metric_index] != name
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is runs


async def test_delete_asks_and_resume_says_why(runs_dir):
    paths = three_runs(runs_dir)
    app = CockpitApp(runs_dir=runs_dir, run=IDS[2])  # watching the run that is then deleted
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        runs = await runs_list(pilot, 3)
        await pilot.press("R")
        await wait_for(pilot, lambda: "has finished" in notice(app), 5, what="the resume refusal")
        await pilot.press("D")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and IDS[2] in str(app.screen.detail)
        await pilot.press("n")
        await pilot.pause()
        assert paths[2].exists(), "no deletes without a yes"
        await pilot.press("delete", "y")
        await wait_for(pilot, lambda: runs.query_one(DataTable).row_count == 2, 10, what="the list without it")
        assert not paths[2].exists() and paths[0].exists()
        assert app.dashboard.path is None and app.dashboard.sub_title == "dashboard · no run attached"


async def test_resume_starts_a_stopped_runs_worker(runs_dir, monkeypatch):
    import cockpit.core.resume as resume_mod

    run = make_fixture_run(runs_dir)
    run.set_meta(state="stopped")
    run.checkpoints.mkdir(exist_ok=True)
    (run.checkpoints / "last.pt").write_bytes(b"x")
    run.close()
    started = []

    class Proc:
        pid = 4242

        def poll(self):
            return 0

    monkeypatch.setattr(resume_mod, "start_worker", lambda r, layout, claim=None: started.append(r.run_id) or Proc())
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await runs_list(pilot, 1)
        await pilot.press("R")
        await wait_for(pilot, lambda: started, 5, what="the worker to start")
        await wait_for(pilot, lambda: app.screen is app.dashboard, 5, what="the dashboard of the resumed run")
    assert started == [FIXTURE_ID]
    r = Run(runs_dir / FIXTURE_ID)
    assert r.meta()["resume"] and any(e["kind"] == "resume_requested" for e in r.events_since())
    r.close()


# ------------------------------------------------------------------------------ editor and dialogs


async def test_entering_a_field_selects_it_and_marks_it(runs_dir):
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = app.editor.row("data.val_size")
        row.control.focus()
        await pilot.pause()
        assert row.has_class("-focused") and "▸ val_size" in str(row.query_one(".field-label").render())
        assert row.control.selected_text == "0", "the value is selected: typing replaces it"
        await pilot.press("6", "4")
        await pilot.pause()
        assert row.control.value == "64"


async def test_the_preset_picker_says_what_each_preset_is_for(runs_dir):
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, LoadSpecScreen)
        options = dialog.query_one(OptionList)
        texts = {(options.get_option_at_index(i).id or ""): str(options.get_option_at_index(i).prompt)
                 for i in range(options.option_count)}
        cosine = next(t for t in texts.values() if t.strip().startswith("sgd_cosine "))
        assert "best single model" in cosine
        index = next(i for i in range(options.option_count)
                     if str(options.get_option_at_index(i).prompt).strip().startswith("quickstart"))
        options.highlighted = index
        await pilot.pause()
        assert "embedded default" in str(dialog.query_one("#load-about", Static).render())


# ------------------------------------------------------------------------------ CLI


def test_cockpit_presets_lists_every_preset_with_its_description():
    out = cockpit("presets")
    assert out.returncode == 0, out.stderr
    for name in ("quickstart", "sgd_cosine", "cpu_cifar10", "cpu_optimizers"):
        assert name in out.stdout
    assert "best single model" in out.stdout and "sweep" in out.stdout


@pytest.mark.skipif(not Path(sys.executable).with_name("cockpit").exists(), reason="needs the installed cockpit script")
def test_shell_completion_offers_presets_and_run_ids(runs_dir):
    make_fixture_run(runs_dir).close()

    def complete(words: str) -> list[str]:
        env = dict(os.environ, _COCKPIT_COMPLETE="complete_bash", COMP_WORDS=words,
                   COMP_CWORD=str(len(words.split()) - 1))
        binary = Path(sys.executable).with_name("cockpit")  # completion keys on the program's name
        out = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
        return out.stdout.split()

    assert "sgd_cosine" in complete("cockpit run sgd_c")
    assert complete("cockpit calibrate 2026") == [FIXTURE_ID]
    assert complete(f"cockpit --runs-dir {runs_dir} report 2026") == [FIXTURE_ID]
    assert "presets" in complete("cockpit pres")


def test_compare_at_80_columns_never_cuts_an_id(runs_dir):
    three_runs(runs_dir)
    out = cockpit("compare", "--runs-dir", str(runs_dir), "--width", "80", *IDS)
    assert out.returncode == 0, out.stderr
    for rid in IDS:
        assert rid in out.stdout
    assert "…" not in out.stdout.split("Spec fields")[0]


# ------------------------------------------------------------------------------ snapshots


def test_snapshot_chart(snap_compare, runs_dir):
    make_fixture_run(runs_dir).close()

    async def chart(pilot):
        await dashboard_loaded(pilot)
        await pilot.press("enter")  # the Loss panel: the first one
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "data", None) and pilot.app.screen.data.series, 10,
                       what="the chart")
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID), terminal_size=(80, 24), run_before=chart)


def test_snapshot_compare_three_runs(snap_compare, runs_dir):
    three_runs(runs_dir)

    async def compare(pilot):
        await runs_list(pilot, 3)
        await pilot.press("space", "space", "space", "c")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "tables", None) is not None, 15, what="the comparison")
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir), terminal_size=(80, 24), run_before=compare)


def test_snapshot_runs_list_with_marks(snap_compare, runs_dir, monkeypatch):
    three_runs(runs_dir)
    monkeypatch.chdir(runs_dir.parent)  # the list names its folder: a relative one keeps the picture stable

    async def marked(pilot):
        await runs_list(pilot, 3)
        await pilot.press("space", "down", "space")
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir="runs"), terminal_size=(80, 24), run_before=marked)


def test_snapshot_finished_run_no_color(snap_compare, runs_dir, monkeypatch):
    make_fixture_run(runs_dir).close()
    monkeypatch.setenv("NO_COLOR", "1")

    async def pressed(pilot):
        await dashboard_loaded(pilot)
        await pilot.press("s")  # hidden on a finished run: the notice line says why
        await pilot.pause(0.4)

    assert snap_compare(CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID), terminal_size=(80, 24), run_before=pressed)


def test_snapshot_editor_focus_no_color(snap_compare, runs_dir, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def focused(pilot):
        await pilot.pause()
        pilot.app.editor.row("data.download").control.focus()  # a switch: no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir), terminal_size=(80, 24), run_before=focused)


# ------------------------------------------------------------------------------ real processes (slow)


@pytest.mark.slow
async def test_k_on_a_finished_run_runs_calibration_and_adds_its_rows(runs_dir):
    """The pass runs in a child process (`cockpit calibrate RUN_DIR`, the same path t takes for TTA)."""
    from cockpit.tui.widgets.results_table import ResultsTable

    sets = [a for s in TINY_SETS if not s.startswith("train.epochs") for a in ("--set", s)]
    res = cockpit("run", "--runs-dir", str(runs_dir), *sets, "--set", "train.epochs=1", "--set", "data.val_size=64")
    assert res.returncode == 0, res.stderr[-2000:]
    app = CockpitApp(runs_dir=runs_dir, run="last")
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        assert dash.state == "finished" and dash.check_action("calibrate", ()) is True
        await pilot.press("k")
        await pilot.pause()
        assert dash.check_action("calibrate", ()) is None, "a pass already running is not started twice"
        assert "calibrate running" in str(dash.query_one(ResultsTable).border_subtitle)
        assert "calibrate running" in dash.query_one(NoticeLine).hint, "its progress shows above the fold too"
        await wait_for(pilot, lambda: dash.outcomes, 90, step=0.5, what="the pass")
        assert dash.outcomes[0].ok, dash.outcomes
        await wait_for(pilot, lambda: "calibrated" in {r["pass"] for r in dash.query_one(ResultsTable).rows}, 10,
                       what="the result rows")
        assert "pass finished" in notice(app) and dash.check_action("calibrate", ()) is True


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_real_binary_over_tmux_at_80x24(runs_dir, tmp_path):
    """A person at 80x24: the runs list, three runs marked and compared, a run's full chart, no dead key."""
    three_runs(runs_dir)
    binary = Path(sys.executable).with_name("cockpit")
    session = f"cockpit-test-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"{binary} --runs-dir {runs_dir}"], check=True, cwd=tmp_path)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def keys(*k: str) -> None:
        for key in k:
            subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
            time.sleep(0.3)

    def until(text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = screen()
            if text in shown:
                return shown
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never showed:\n{screen()}")

    try:
        until("spec editor")
        keys("Escape", "r")
        until("3 runs in")
        keys("Space", "Space", "Space", "c")
        shown = until("Spec fields that differ")  # then what was done to each run; the results below the fold
        for rid in IDS:
            assert rid in shown or rid in until(rid), rid
        keys("Escape", "Enter")
        until("Loss")
        keys("s")
        assert "cannot stop: the run is finished" in until("cannot stop")
        keys("Enter")
        shown = until("steps 0–32")
        assert "set-lr@22" in shown
        keys("Escape", "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# ------------------------------------------------------------------------------ hardest examples


def _thumb(side: int = 16) -> str:
    """A stored thumbnail as the worker writes it: a red-to-blue gradient (torch-free here)."""
    import base64

    return base64.b64encode(bytes(v for y in range(side) for x in range(side)
                                  for v in (x * 255 // (side - 1), 0, y * 255 // (side - 1)))).decode()


def test_thumbnails_from_the_engine_decode_in_the_tui():
    torch = pytest.importorskip("torch")
    from cockpit.core.thumbs import decode
    from engine.thumbs import thumbnails

    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    images[0, 0] = 255  # red
    images[1, :, 16:] = 100  # grey bottom half
    rows = [decode(t) for t in thumbnails(images)]
    assert len(rows[0]) == 16 and len(rows[0][0]) == 16 and rows[0][3][5] == (255, 0, 0)
    assert rows[1][0][0] == (0, 0, 0) and rows[1][15][0] == (100, 100, 100)
    grey = thumbnails(torch.full((1, 1, 28, 28), 7, dtype=torch.uint8))
    assert decode(grey[0])[0][0] == (7, 7, 7), "one channel is shown as grey"
    assert decode("") == [] and decode("not base64!") == [] and decode("AAAAAA==") == [], "4 bytes: no square"


def _run_with_thumbs(runs_dir: Path) -> None:
    from engine.contracts import parse_result

    run = make_fixture_run(runs_dir)
    examples = [{"index": 10 + i, "label": i % 3, "pred": (i + 1) % 3, "loss": 4.0 - i / 2,
                 "thumb": _thumb() if i < 3 else ""} for i in range(4)]
    run.add_result(parse_result("hardest", {"examples": examples, "classes": ["cat", "dog", "ship"]}), step=32)
    run.close()


async def test_h_shows_the_hardest_examples_as_thumbnails(runs_dir):
    from cockpit.tui.screens.hardest import HardestScreen

    _run_with_thumbs(runs_dir)
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        await pilot.press("h")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, HardestScreen) and app.screen.result
                                and app.screen, 10, what="the hardest examples")
        await pilot.pause()
        cards = [str(c.render()) for c in screen.query(".hardest-card")]
        assert len(cards) == 3, "the examples with a thumbnail"
        assert "▀" in cards[0] and "label cat" in cards[0] and "pred  dog" in cards[0] and "loss  4.000" in cards[0]
        assert "3 hardest test examples at step 32" in str(screen.query_one("#hardest-head", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.dashboard


def test_snapshot_hardest_examples(snap_compare, runs_dir):
    _run_with_thumbs(runs_dir)

    async def hardest(pilot):
        await dashboard_loaded(pilot)
        await pilot.press("h")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "result", None) is not None, 10, what="the examples")
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID), terminal_size=(80, 24), run_before=hardest)


async def test_the_dashboard_says_once_that_a_run_is_gpu_sized_on_a_cpu(runs_dir):
    """The worker's SlowOnCPU event becomes a notice naming the CPU recipe, once per run watched."""
    from engine.contracts import SlowOnCPU

    run = make_fixture_run(runs_dir)
    said = SlowOnCPU(eta_s=9 * 86400, images_per_s=5.0)
    run.add_event(said.KIND, said.message(), level="warning", step=4, **said.model_dump())
    run.close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        await wait_for(pilot, lambda: "GPU-sized" in notice(app), 10, what="the notice")
        assert notice(app) == f"GPU-sized on a CPU: {said.message()}"
        assert "cpu_cifar10" in notice(app) and "9 days" in notice(app)
        app.notify("something else")
        again = Run(runs_dir / FIXTURE_ID)
        again.add_event("checkpoint", "checkpoint written", step=5)  # new events: the dashboard reads them
        max_id = lambda: again.con.execute("SELECT max(id) FROM events").fetchone()[0]  # noqa: E731
        await wait_for(pilot, lambda: dash.query_one("#events").seen == max_id(), 10, what="the new event")
        assert notice(app).endswith("something else"), "said once, not at every reading of new events"
        again.close()


async def test_a_live_run_whose_worker_is_silent_shows_not_responding(runs_dir):
    """A live worker (this very process: its pid and start token) that has not beaten for longer
    than the limit: the dashboard's head and the runs list say `not responding`, with no ETA."""
    from engine.store import process_start

    run = make_fixture_run(runs_dir)
    run.set_meta(state="running", ended=None, host=__import__("socket").gethostname(), pid=os.getpid(),
                 pid_start=process_start(os.getpid()), heartbeat=time.time() - 3600)
    run.close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(100, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        head = str(dash.query_one("RunBar").render())
        assert "? not responding" in head and "no heartbeat for 1h 00m" in head and "ETA" not in head, head
        screen = await runs_list(pilot, 1)
        cells = [str(c) for c in screen.query_one(DataTable).get_row_at(0)]
        assert any("not responding" in c for c in cells), cells


async def test_a_key_the_worker_never_takes_is_withdrawn_at_its_deadline(runs_dir, monkeypatch):
    """A frozen worker never takes the pause: at the deadline the dashboard withdraws it (expired in
    the store, so the worker cannot run it when it wakes) and says the run is not responding."""
    import cockpit.tui.jobs as jobs
    from engine.store import process_start

    from .test_tui import live_fixture

    monkeypatch.setattr(jobs, "COMMAND_DEADLINE_S", 0.5)
    live = live_fixture(runs_dir)
    live.set_meta(pid_start=process_start(os.getpid()), heartbeat=time.time() - 120)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: dash.replies, 10, what="the withdrawal")
        assert [(a.kind, a.status) for a in dash.replies] == [("pause", "expired")]
        assert "is not responding" in dash.replies[0].reply and "never be executed" in dash.replies[0].reply
        assert [c["status"] for c in commands(live.path)] == ["expired"]
        assert not live.take_command(commands(live.path)[0]["id"]), "the worker, waking, cannot take it"
