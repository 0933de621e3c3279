"""The TUI as a person drives it: Pilot key presses on the real app, a fixture run store, and
(marked slow) a real worker process launched from the spec editor or started headless."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Switch, TabbedContent

from cockpit.core.finishing import finishing_rows
from cockpit.core.spec_form import check, format_value, parse_text, spec_data, switch_union
from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.dashboard import DashboardScreen
from cockpit.tui.screens.dialogs import ConfirmScreen, DiffScreen, LoadSpecScreen, SavePresetScreen, SetLRScreen
from cockpit.tui.screens.editor import SpecEditorScreen
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.screens.runs import RunsScreen
from cockpit.tui.widgets.event_log import EventLog
from cockpit.tui.widgets.field_row import FieldRow
from cockpit.tui.widgets.notice_line import NoticeLine
from cockpit.tui.widgets.results_table import ResultsTable
from cockpit.tui.widgets.trace_panel import TracePanel
from engine.contracts import parse_result
from engine.spec import RunSpec, load_spec
from engine.store import Run, resolve_run

from .conftest import ROOT, TINY_SETS

FIXTURE_ID = "20260101-120000-fixture"
T0 = 1767268800.0  # fixed wall clock for the fixture's meta (nothing on screen reads the real clock)


def make_fixture_run(runs_dir: Path, run_id: str = FIXTURE_ID) -> Run:
    """A finished run with fixed metric values: 4 epochs of 8 steps, two LR groups, every instrument."""
    spec = load_spec(None, ["name=fixture", "train.epochs=4", "data.val_size=64", "optim.layer_lr.stem=0.5",
                            "swa.enabled=true", "swa.start=0.75"])
    tmp = Run.create(runs_dir, spec, preset="quickstart")
    tmp.close()
    os.rename(tmp.path, runs_dir / run_id)
    run = Run(runs_dir / run_id)
    run.set_meta(run_id=run_id, state="finished", created=T0, started=T0 + 2, ended=T0 + 85, total_steps=32,
                 steps_per_epoch=8, epochs=4, device="CPU (2 cores, 1 threads)", host="fixture")
    groups = ["stem", "block1", "block2", "fc"]
    rows = []
    for s in range(1, 33):
        e = s / 8
        lr = 0.05 * 0.5 * (1 + math.cos(math.pi * s / 32))
        rows += [(s, e, "train_loss", 2.3 * math.exp(-s / 14) + 0.25 + 0.05 * math.sin(s)),
                 (s, e, "train_acc", 0.1 + 0.8 * (1 - math.exp(-s / 12))),
                 (s, e, "lr", lr), (s, e, "lr/default", lr), (s, e, "lr/stem", lr * 0.5),
                 (s, e, "grad_norm", 1.5 + math.sin(s / 3) + (6.0 if s == 20 else 0.0)),
                 (s, e, "images_per_s", 1200 + 40 * math.sin(s)), (s, e, "step_time_ms", 52 + 2 * math.cos(s)),
                 (s, e, "data_time_ms", 3.5 + 0.2 * math.sin(s))]
        rows += [(s, e, f"grad_norm/{g}", (i + 1) * 0.3 + 0.1 * math.sin(s + i)) for i, g in enumerate(groups)]
        if s % 4 == 0:
            rows += [(s, e, "act/saturation", 0.02 + 0.001 * s), (s, e, "act/dead", 0.05 + 0.004 * s),
                     (s, e, "difficulty/p10", 0.3 * math.exp(-s / 20)), (s, e, "difficulty/p50", 1.2 * math.exp(-s / 20)),
                     (s, e, "difficulty/p90", 2.4 * math.exp(-s / 30)), (s, e, "difficulty/max", 4.0 - s / 16)]
        if s % 8 == 0:
            ep = s // 8
            rows += [(s, e, "test_loss", 2.0 - 0.3 * ep), (s, e, "test_acc", 0.35 + 0.1 * ep),
                     (s, e, "val_loss", 2.05 - 0.3 * ep), (s, e, "val_acc", 0.33 + 0.1 * ep)]
    rows += [(32, 4.0, "swa_test_acc", 0.78), (32, 4.0, "swa_test_loss", 0.71)]
    run.add_metrics(rows)
    run.add_event("started", "training tiny on synthetic (cpu)", step=0)
    run.add_event("grad_spike", "grad norm 8.06 is 5x its running median 1.5", level="warning", step=20)
    run.add_event("set_lr", "layer stem multiplier 0.5 (was set live)", step=22)
    run.add_event("swa_started", "SWA started at epoch 4 (spec)", step=24)
    run.add_event("swa_finished", "SWA model: test_acc=0.7800", step=32)
    run.add_event("finished", "done", step=32)
    run.add_result(parse_result("hardest", {"examples": [{"index": 3, "label": 1, "pred": 2, "loss": 4.0}]}), step=32)
    run.add_result(parse_result("swa", {"base_acc": 0.75, "swa_acc": 0.78, "delta": 0.03, "epochs": 2, "test_acc": 0.78,
                                        "test_loss": 0.71}), step=32, checkpoint="swa.pt")
    no_bins = {"before": [], "after": []}
    run.add_result(parse_result("calibrate", {
        "temperature": 1.42, "before": {"acc": 0.75, "nll": 0.8, "ece": 0.061},
        "after": {"acc": 0.75, "nll": 0.74, "ece": 0.018}, "reliability": no_bins, "val_nll": {"before": 0.8, "after": 0.7},
        "bins": 15, "val_size": 64, "test_size": 128, "checkpoint": "best.pt", "step": 32}), step=32)
    run.add_result(parse_result("tta", {"base_acc": 0.75, "base_loss": 0.8, "tta_acc": 0.7656, "tta_loss": 0.69,
                                        "delta": 0.0156, "ece": 0.02, "combine": "logits", "n_views": 2,
                                        "random_views": 0, "seed": 0, "checkpoint": "best.pt", "step": 32,
                                        "views": {"identity": 0.75, "flip": 0.748}}), step=32)
    return run


def add_system_metrics(run: Run) -> None:
    """What the worker samples on a CPU host, at fixed values: CPU, RAM and disk use over the run."""
    rows = []
    for s in range(2, 33, 2):
        rows += [(s, s / 8, "system/cpu", 0.6 + 0.3 * math.sin(s / 5) ** 2), (s, s / 8, "system/ram", 0.3 + 0.005 * s),
                 (s, s / 8, "system/ram_gb", 4.8 + 0.08 * s), (s, s / 8, "system/disk", 0.42),
                 (s, s / 8, "system/worker_ram_gb", 1.1)]
    run.add_metrics(rows)


# ------------------------------------------------------------------------------------ helpers


def tiny_preset(folder: Path, epochs: int = 20, name: str = "tinytui") -> Path:
    """A preset file with the tiny-run overrides (the editor loads it like any preset)."""
    from engine.spec import dump_spec

    spec = load_spec(None, [s for s in TINY_SETS if not s.startswith("train.epochs")] + [f"train.epochs={epochs}",
                                                                                         f"name={name}"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(dump_spec(spec), encoding="utf-8")
    return path


async def wait_for(pilot, predicate, timeout: float = 60.0, step: float = 0.1, what: str = "condition"):
    """Let the app run until `predicate()` holds (the worker is another process: real time passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def db_state(path: Path) -> str:
    run = Run(path)
    try:
        return run.meta()["state"]
    finally:
        run.close()


def commands(path: Path) -> list[dict]:
    run = Run(path)
    try:
        return [dict(r) for r in run.con.execute("SELECT * FROM commands ORDER BY id")]
    finally:
        run.close()


def live_fixture(runs_dir: Path, run_id: str = "20260101-130000-live") -> Run:
    """A fixture run that looks alive to every viewer (its pid is this test process)."""
    import socket

    run = make_fixture_run(runs_dir, run_id)
    run.set_meta(state="running", pid=os.getpid(), host=socket.gethostname(), ended=None)
    return run


async def dashboard_loaded(pilot) -> DashboardScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.dashboard._seen_rows > 0 and app.dashboard.state, 10, what="the first poll")
    await pilot.pause()
    return app.dashboard


# ------------------------------------------------------------------------- the spec model


def test_every_spec_field_gets_a_widget_from_the_model():
    from cockpit.core.spec_form import Group, sections, section_nodes, top_level_fields
    from engine.spec import KNOWN_KEYS

    data = spec_data(RunSpec())

    def leaves(nodes):
        for n in nodes:
            if isinstance(n, Group):
                yield from leaves(n.children)
            else:
                yield n

    fields = list(top_level_fields())
    for name, _, _ in sections():
        fields += list(leaves(section_nodes(name, data)))
    paths = {f.path for f in fields}
    from engine.spec import SGDSpec

    sgd_only = {k for k in KNOWN_KEYS if not k.startswith("optim.")} | {"optim." + k for k in SGDSpec.model_fields}
    assert paths == sgd_only, "each spec leaf is a field in the editor (SGD is the default optimizer)"
    kinds = {f.path: f.kind for f in fields}
    assert kinds["data.source"] == "choice" and kinds["optim.name"] == "choice"
    assert kinds["data.download"] == "bool" and kinds["augment.resized_crop.enabled"] == "bool"
    assert kinds["optim.lr"] == "float" and kinds["train.epochs"] == "int" and kinds["data.root"] == "str"
    assert kinds["augment.resized_crop.scale"] == "toml" and kinds["optim.layer_lr"] == "toml"
    assert all(f.description for f in fields), "descriptions are the help text"


@pytest.mark.parametrize("kind,value", [
    ("float", 0.0005), ("float", 1e-08), ("float", 1000.0), ("int", 16), ("str", "a b"),
    ("toml", [0.08, 1.0]), ("toml", {"stem": 0.1, "fc": 2.0}), ("toml", ["identity", "flip"]), ("toml", {}),
])
def test_field_text_round_trips(kind, value):
    assert parse_text(kind, format_value(kind, value)) == value


def test_switching_the_optimizer_keeps_what_the_user_changed():
    data = spec_data(load_spec(None, ["optim.weight_decay=0.001", "optim.layer_lr.stem=0.5"]))
    new = switch_union(data, "optim", "adamw")
    assert new["name"] == "adamw" and new["lr"] == 1e-3, "AdamW's own default LR, the SGD default was not changed"
    assert new["weight_decay"] == 0.001 and new["layer_lr"] == {"stem": 0.5}
    assert "momentum" not in new and new["betas"] == [0.9, 0.999]
    data["optim"] = new
    spec, errors = check(data)
    assert errors == [] and spec.optim.name == "adamw"


def test_finishing_rows_put_each_pass_against_its_base(runs_dir):
    run = make_fixture_run(runs_dir)
    rows = {r["pass"]: r for r in finishing_rows({"test_acc": 0.74, "test_loss": 0.7},
                                                  {r.kind: r for r in run.results()})}
    run.close()
    assert rows["base"]["acc"] == 0.74 and rows["base"]["delta_acc"] is None
    assert rows["swa"]["acc"] == 0.78 and rows["swa"]["delta_acc"] == pytest.approx(0.03), \
        "SWA is against the model it averaged (0.75), not the last evaluation (0.74)"
    assert rows["calibrated"]["ece"] == 0.018 and rows["calibrated"]["delta_acc"] == 0.0
    assert rows["tta"]["delta_acc"] == pytest.approx(0.0156), "TTA is against its own identity view"
    assert set(rows) == {"base", "swa", "calibrated", "tta"}, "the hardest examples are no finishing pass"


async def test_the_dashboard_and_the_report_show_the_same_finishing_rows(runs_dir):
    from textual.app import App

    from cockpit.report.summary import summarize

    run = make_fixture_run(runs_dir)
    report = summarize(run)["finishing"]

    class One(App):
        def compose(self):
            yield ResultsTable(id="results")

    async with One().run_test() as pilot:
        table = pilot.app.query_one(ResultsTable)
        table.show({r.kind: r for r in run.results()}, {"test_acc": 0.75, "test_loss": 0.8})
        shown = [(r["pass"], r["acc"], r["delta_acc"], r["baseline"]) for r in table.rows]
    run.close()
    assert shown == [(r["pass"], r["acc"], r["delta_acc"], r["baseline"]) for r in report]


# ------------------------------------------------------------------------- spec editor (Pilot)


async def test_editing_a_field_shows_the_pydantic_message_and_refuses_launch(runs_dir):
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SpecEditorScreen), "no run is active: the editor opens"
        editor = app.editor
        assert editor.valid and "✓ valid" in str(editor.query_one("#spec-status").render())
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")  # Data -> Augment -> Model -> Optimizer
        await pilot.pause()
        assert app.screen.query_one(TabbedContent).active == "tab-optim"
        assert app.focused is editor.row("optim.name").control, "^n focuses the section's first field"
        lr = editor.row("optim.lr")
        assert isinstance(lr.control, Input)
        lr.control.focus()
        await pilot.press("ctrl+u", "-", "1")
        await pilot.pause()
        assert lr.control.value == "-1"
        assert not editor.valid
        error = str(lr.query_one(".field-error").render())
        assert "greater than 0" in error, error
        assert lr.has_class("-invalid")
        assert "✗ 1 problem" in str(editor.query_one("#spec-status").render())
        assert str(app.screen.query_one(TabbedContent).get_tab("tab-optim").label) == "Optimizer ✗"

        await pilot.press("ctrl+r")
        await pilot.pause()
        assert not runs_dir.exists() or not any(runs_dir.iterdir()), "launch is refused while the spec is invalid"
        assert any("launch refused" in (n.title or "") for n in app._notifications)
        notice_line = editor.query_one(NoticeLine)
        await pilot.pause(0.3)  # the notice line reads the newest notice four times a second
        assert "launch refused" in str(notice_line.render())

        await pilot.press("ctrl+u", "0", ".")  # still invalid, the same problem: the refusal still holds
        await pilot.pause(0.3)
        assert not editor.valid and "launch refused" in str(notice_line.render())
        await pilot.press("1")
        await pilot.pause(0.3)
        assert editor.valid and not lr.has_class("-invalid")
        assert "launch refused" not in str(notice_line.render()), "the refusal goes once the spec is valid"
        assert editor.data["optim"]["lr"] == 0.1 and lr.has_class("-changed")
        assert "1 change vs quickstart" in str(editor.query_one("#spec-status").render())


async def test_keys_typed_faster_than_the_app_are_applied_in_order(runs_dir):
    """ctrl+u, 0.5, backspace, 1 arriving in one burst (a loaded box, a key macro): 0.1, never 0.5 or 0.51
    (Textual's Input ran its bound keys after the characters typed behind them)."""
    from textual import events

    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.editor.show_section("optim")
        await pilot.pause()
        lr = app.editor.row("optim.lr").control
        lr.focus()
        await pilot.pause()
        burst = [("ctrl+u", None), ("0", "0"), ("full_stop", "."), ("5", "5"), ("backspace", None), ("1", "1"),
                 ("left", None), ("left", None), ("delete", None), ("full_stop", ".")]
        for key, char in burst:  # as the driver posts them, without waiting for the app between keys
            app.post_message(events.Key(key, char))
        await pilot.pause()
        assert lr.value == "0.1" and app.editor.data["optim"]["lr"] == 0.1, lr.value


async def test_widgets_follow_field_types_and_the_optimizer_swaps_its_fields(runs_dir):
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.editor
        assert isinstance(editor.row("data.source").control, Select)
        assert isinstance(editor.row("data.download").control, Switch)
        assert isinstance(editor.row("data.val_size").control, Input)
        editor.row("data.download").control.focus()
        await pilot.press("space")
        await pilot.pause()
        assert editor.data["data"]["download"] is False
        assert "off" in str(editor.row("data.download").query_one(".field-mark").render())

        await editor.show_section("optim")
        await pilot.pause()
        tag = editor.row("optim.name").control
        assert app.focused is tag
        tag.value = "adamw"  # what Enter, Down, Enter on the open menu does
        await pilot.pause()
        paths = {r.path for r in editor.query(FieldRow)}
        assert {"optim.betas", "optim.eps"} <= paths and "optim.momentum" not in paths
        assert editor.row("optim.lr").control.value == "0.001"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert isinstance(app.screen, DiffScreen)
        keys = [k for k, _, _ in app.screen.rows]
        assert "optim.name" in keys and "data.download" in keys and "optim.momentum" in keys
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is editor


async def test_save_as_preset_and_load_a_past_runs_spec(runs_dir, tmp_path):
    make_fixture_run(runs_dir).close()
    presets = tmp_path / "presets"
    app = CockpitApp(runs_dir=runs_dir, presets_dir=presets)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.editor
        editor.row("data.val_size").control.value = "128"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SavePresetScreen)
        await pilot.press("ctrl+u", *"mine", "enter")
        await pilot.pause()
        saved = presets / "mine.toml"
        assert saved.is_file() and load_spec(saved).data.val_size == 128
        assert editor.label == "mine" and "0 changes vs mine" in str(editor.query_one("#spec-status").render())

        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, LoadSpecScreen)
        option_list = app.screen.query_one("#load-options")
        index = next(i for i in range(option_list.option_count)
                     if (option_list.get_option_at_index(i).id or "").startswith("run:"))
        option_list.highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        editor = app.editor
        assert app.screen is editor and editor.label == FIXTURE_ID
        assert editor.data["train"]["epochs"] == 4 and editor.data["optim"]["layer_lr"] == {"stem": 0.5}
        assert editor.row("name").control.value == "fixture"


# ------------------------------------------------------------------------ dashboard (fixture)


async def test_dashboard_shows_a_runs_store(runs_dir):
    make_fixture_run(runs_dir).close()
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        assert app.screen is dash and dash.state == "finished"
        loss = dash.query_one("#panel-loss", TracePanel).line("train_loss")
        assert len(loss.values) == 32 and loss.display
        lr = dash.query_one("#panel-lr", TracePanel)
        assert lr.line("lr/default") is not None and lr.line("lr/stem") is not None, "a line per LR group"
        grads = dash.query_one("#panel-grad", TracePanel)
        assert [grads.line(f"grad_norm/{g}") is not None for g in ("stem", "block1", "block2", "fc")] == [True] * 4
        for metric in ("act/saturation", "act/dead", "difficulty/p10", "difficulty/p90", "images_per_s"):
            assert any(p.line(metric) and p.line(metric).values for p in dash.query(TracePanel)), metric
        log = dash.query_one(EventLog)
        assert log.seen == 6 and log.alarms == 1
        rows = dash.query_one(ResultsTable).rows
        assert [r["pass"] for r in rows] == ["base", "swa", "calibrated", "tta"]
        # a finished run takes no commands: the live-only keys are hidden, and pressing one says why
        assert dash.check_action("stop", ()) is False and dash.check_action("pause", ()) is False
        await pilot.press("s", "p", "c")
        await pilot.pause()
        assert app.screen is dash and commands(runs_dir / FIXTURE_ID) == []
        assert "cannot checkpoint: the run is finished" in app.last_notice.message


async def test_opening_cockpit_attaches_to_the_running_run(runs_dir):
    make_fixture_run(runs_dir).close()
    live = live_fixture(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        assert app.screen is dash and dash.path == live.path and dash.state == "running"
        assert dash.check_action("pause", ()) is True and dash.check_action("continue", ()) is False
        await pilot.press("r")
        await pilot.pause()
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: runs.query_one(DataTable).row_count == 2, 10, what="the runs list")
        assert [r.state for r in runs.rows] == ["running", "finished"], "newest first"
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen is dash
        await wait_for(pilot, lambda: dash.state == "finished", 10, what="the fixture run")
        assert dash.path.name == FIXTURE_ID


async def test_several_active_runs_open_the_runs_list(runs_dir):
    live_fixture(runs_dir, "20260101-130000-a").close()
    live_fixture(runs_dir, "20260101-140000-b").close()
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await wait_for(pilot, lambda: runs.query_one(DataTable).row_count == 2, 10, what="the runs list")
        assert runs.rows[runs.query_one(DataTable).cursor_row].run_id == "20260101-140000-b"


async def test_steering_keys_write_commands_and_show_the_reply(runs_dir):
    live = live_fixture(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        await pilot.press("p")
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen), "stop asks first"
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, what="the stop question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is dash, 5, what="the dashboard")
        await pilot.press("c", "k", "t", "l")
        await wait_for(pilot, lambda: isinstance(app.screen, SetLRScreen), 5, what="the LR dialog")
        await pilot.pause()
        await pilot.press("tab", "enter")  # the target menu: base LR, then the groups in the order logged
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.screen.query_one("#lr-target", Select).value == "default"
        app.screen.query_one("#lr-value", Input).focus()
        await pilot.press("ctrl+u", *"0.5", "enter")
        await pilot.pause()
        assert app.screen is dash
        await wait_for(pilot, lambda: len(commands(live.path)) == 6, 10, what="six commands")
        cmds = commands(live.path)
        assert [c["kind"] for c in cmds] == ["pause", "stop", "checkpoint", "calibrate", "tta", "set_lr"]
        assert all(c["source"] == "tui" for c in cmds)
        import json

        assert json.loads(cmds[-1]["args"]) == {"layer": "default", "mult": 0.5}
        # the worker's replies (here written by hand) come back as notifications
        live.ack_command(cmds[3]["id"], "failed", "unknown command 'calibrate'")
        live.ack_command(cmds[0]["id"], "done", "paused")
        await wait_for(pilot, lambda: len(dash.replies) == 2, 10, what="two replies")
        assert any("unknown command 'calibrate'" in n.message for n in app._notifications)
        assert any(n.message == "pause: paused" for n in app._notifications)
        assert {(a.kind, a.status) for a in dash.replies} == {("calibrate", "failed"), ("pause", "done")}


async def test_quitting_leaves_a_live_run_going_and_says_so(runs_dir, capsys):
    live = live_fixture(runs_dir)
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert "still training" in app.exit_message and f"cockpit attach {live.run_id}" in app.exit_message
    assert "still training in the background" in capsys.readouterr().err, "printed after the TUI closes"
    assert db_state(live.path) == "running" and commands(live.path) == []


# ---------------------------------------------------------------------------------- snapshots


def test_snapshot_spec_editor(snap_compare, runs_dir):
    """The same screen from a cold and a warm start (two snapshots, the same picture)."""
    async def leave_field(pilot):
        await pilot.press("escape")  # focus on the section tabs: no blinking cursor, every key in the footer
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir), terminal_size=(80, 24), run_before=leave_field)


def test_snapshot_spec_editor_invalid_field(snap_compare, runs_dir):
    async def break_lr(pilot):
        await pilot.app.editor.show_section("optim")
        await pilot.pause()
        pilot.app.editor.row("optim.lr").control.value = "-1"
        await pilot.press("escape")
        await pilot.pause()

    assert snap_compare(CockpitApp(runs_dir=runs_dir), terminal_size=(80, 24), run_before=break_lr)


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 50)], ids=["80x24", "120x36", "200x50"])
def test_snapshot_dashboard(snap_compare, runs_dir, size):
    """Compact panels at 80x24; charts with axes that fill the screen at 120x36 and 200x50."""
    run = make_fixture_run(runs_dir)
    add_system_metrics(run)
    run.close()

    async def loaded(pilot):
        await dashboard_loaded(pilot)

    assert snap_compare(CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID), terminal_size=size, run_before=loaded)


def test_snapshot_help_lists_every_binding(snap_compare, runs_dir):
    make_fixture_run(runs_dir).close()

    async def help_(pilot):
        await dashboard_loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = pilot.app.screen
        assert isinstance(help_screen, HelpScreen)
        text = help_screen.plain_text()
        for _, bindings in CockpitApp.help_groups():  # every binding of every screen, on one screen
            for b in bindings:
                assert (b.tooltip or b.description) in text, b

    assert snap_compare(CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID), terminal_size=(80, 24), run_before=help_)


# ------------------------------------------------------------------- the real worker (slow)


def _reap(app: CockpitApp, timeout: float = 60) -> None:
    for proc in list(app._spawned):
        proc.wait(timeout=timeout)


@pytest.mark.slow
async def test_launch_from_the_editor_then_quit_reattach_and_stop(runs_dir, tmp_path):
    preset = tiny_preset(tmp_path / "presets", epochs=1000)  # far longer than the test: it is stopped
    first = CockpitApp(runs_dir=runs_dir, preset=str(preset), presets_dir=tmp_path / "presets")
    async with first.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert first.editor.label == "tinytui" and first.editor.valid
        await pilot.press("escape", "ctrl+r")
        dash = await wait_for(pilot, lambda: first.screen is first.dashboard and first.dashboard.path and first.dashboard,
                              10, what="the dashboard of the new run")
        run_path = dash.path
        loss = dash.query_one("#panel-loss", TracePanel).line("train_loss")
        await wait_for(pilot, lambda: len(loss.values) >= 6, 90, what="the loss sparkline to fill")
        n = len(loss.values)
        await wait_for(pilot, lambda: len(loss.values) > n, 30, what="the sparkline to keep growing while watched")
        assert dash.query_one("#panel-grad", TracePanel).line("grad_norm").values
        assert dash.state == "running" and Run(run_path).meta()["preset"] == "tinytui"
        await pilot.press("q")
        await pilot.pause()
    assert first.exit_message and "still training" in first.exit_message
    assert db_state(run_path) == "running", "quitting the TUI leaves the worker training"

    second = CockpitApp(runs_dir=runs_dir)
    async with second.run_test(size=(80, 24)) as pilot:
        dash = await dashboard_loaded(pilot)
        assert second.screen is dash and dash.path == run_path and dash.state == "running", "reopening attaches"
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(second.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: db_state(run_path) == "stopped", 60, what="the run to stop")
        await wait_for(pilot, lambda: dash.state == "stopped", 5, what="the dashboard to show it")
        assert [(a.kind, a.status) for a in dash.replies] == [("stop", "done")], "the worker's reply is shown"
    _reap(first)
    assert [c["kind"] for c in commands(run_path)] == ["stop"]


@pytest.mark.slow
async def test_attach_to_a_headless_run_pause_continue_stop(runs_dir):
    sets = [a for s in TINY_SETS if not s.startswith("train.epochs") for a in ("--set", s)]
    res = subprocess.run([sys.executable, "-m", "cockpit.cli", "run", "--detach", "--runs-dir", str(runs_dir), *sets,
                          "--set", "train.epochs=1000"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    run = resolve_run("last", runs_dir)
    pid = int(run.meta()["pid"])
    app = CockpitApp(runs_dir=runs_dir)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            dash = await dashboard_loaded(pilot)
            assert dash.path == run.path, "the only active run is attached on opening"
            acc = dash.query_one("#panel-acc", TracePanel).line("train_acc")
            await wait_for(pilot, lambda: len(acc.values) >= 3, 90, what="metrics from the headless worker")
            await pilot.press("p")
            await wait_for(pilot, lambda: db_state(run.path) == "paused", 30, what="paused in run.db")
            await wait_for(pilot, lambda: dash.check_action("continue", ()) is True, 5, what="p to mean continue")
            n = len(acc.values)
            await pilot.pause(1.0)
            assert len(acc.values) == n, "no steps while paused"
            await pilot.press("p")
            await wait_for(pilot, lambda: db_state(run.path) == "running", 30, what="running again in run.db")
            await pilot.press("s", "y")
            await wait_for(pilot, lambda: db_state(run.path) == "stopped", 60, what="stopped in run.db")
        kinds = [c["kind"] for c in commands(run.path)]
        assert kinds == ["pause", "continue", "stop"]
        assert {e["kind"] for e in map(dict, run.events_since())} >= {"paused", "continued", "stopped"}
    finally:
        deadline = time.monotonic() + 30
        from engine.store import pid_alive

        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        run.close()


async def test_export_report_writes_files_next_to_the_run(runs_dir):
    pytest.importorskip("cockpit.report")
    run = make_fixture_run(runs_dir)
    app = CockpitApp(runs_dir=runs_dir, run=FIXTURE_ID)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        await pilot.press("x")
        await wait_for(pilot, lambda: any((n.title or "") == "report written" for n in app._notifications), 30,
                       what="the report")
    assert (run.path / "report.html").is_file() and (run.path / "report.json").is_file()


PROBE = r"""
import asyncio, sys, time
t0 = time.perf_counter()
from cockpit.tui.app import CockpitApp

async def main():
    app = CockpitApp(runs_dir=sys.argv[1], run=sys.argv[2])
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.dashboard._seen_rows > 0:
            await pilot.pause(0.05)
        first = time.perf_counter() - t0
        for key in ("r", "e", "d", "question_mark", "escape"):
            await pilot.press(key)
            await pilot.pause()
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking (pytest) process across exec
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    print(f"torch={'torch' in sys.modules} first={first:.2f} rss={rss:.0f}")

asyncio.run(main())
"""


def test_the_tui_process_never_loads_torch_and_stays_small(runs_dir):
    make_fixture_run(runs_dir).close()
    out = subprocess.run([sys.executable, "-c", PROBE, str(runs_dir), FIXTURE_ID], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    fields = dict(kv.split("=") for kv in out.stdout.split())
    assert fields["torch"] == "False", "every screen opened without importing torch"
    assert float(fields["rss"]) < 200, f"{fields['rss']} MB"
