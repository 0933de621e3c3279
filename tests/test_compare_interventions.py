"""A comparison says what was done to each run, not only what its spec says: the LR set live (step and
value), pauses, SWA started by command, passes on the live model or a checkpoint, stops and resumes,
from each run's events, in every view of `compare` (terminal, TUI, HTML, JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from cockpit.core.interventions import interventions
from cockpit.report.compare import compare_runs
from cockpit.report.render.compare import INTERVENTIONS_TITLE, NO_INTERVENTION, render_compare_html, terminal_compare
from engine.spec import load_spec
from engine.store import Run

from .conftest import ROOT, TINY_SETS, cockpit


def _run(runs_dir: Path, epochs: int) -> Run:
    spec = load_spec(None, ["name=twin", f"train.epochs={epochs}", "data.val_size=64"])
    run = Run.create(runs_dir, spec, preset="quickstart")
    run.set_meta(state="finished", steps_per_epoch=8, total_steps=8 * epochs, epochs=epochs, started=1.0e9, ended=1.0e9 + 60)
    return run


def steered(runs_dir: Path) -> Run:
    """A run that was steered as the worker records it: each event with the data the worker gives it."""
    run = _run(runs_dir, 4)
    run.add_event("started", "training tiny on synthetic (cpu)", step=0)
    run.add_event("set_lr", "base LR 0.2 (was set live)", step=5, lr=0.2, layer=None, mult=None, swa=False)
    run.add_event("set_lr", "layer stem multiplier 0.5 (was set live)", step=6, lr=0.2, layer="stem", mult=0.5, swa=False)
    run.add_event("paused", "training paused", step=9)
    run.add_event("continued", "training continued", step=9)
    run.con.execute("UPDATE events SET wall = wall + 3 WHERE kind = 'continued'")  # paused for 3 s
    run.con.commit()
    run.add_event("swa_started", "SWA started at epoch 2 (command)", step=12, why="command")
    run.add_event("tta", "TTA on live (2 views, logits): ...", step=14, checkpoint="live")
    run.add_event("set_lr", "SWA LR 0.05 (was set live)", step=16, lr=0.05, layer=None, mult=None, swa=True)
    run.add_event("stopped", "stopped by cockpit stop", step=20)
    run.add_event("calibrated", "calibrated best.pt ...", step=16, checkpoint="best.pt")
    return run


def test_interventions_are_read_from_the_events_with_step_and_value(runs_dir):
    run = steered(runs_dir)
    found = interventions(run.events_since(0), 8)
    run.close()
    assert [(x["step"], x["action"], x["detail"]) for x in found] == [
        (5, "set-lr", "base LR 0.2"),
        (6, "set-lr", "layer stem multiplier 0.5"),
        (9, "pause", "training paused"),
        (9, "continue", "training continued after 3s paused"),
        (12, "swa", "SWA started by command"),
        (14, "pass", "TTA on the live model"),
        (16, "set-lr", "SWA LR 0.05"),
        (20, "stop", "stopped by cockpit stop"),
        (16, "pass", "calibration on best.pt"),
    ]
    assert found[0]["epoch"] == 5 / 8


def test_what_the_spec_did_is_no_intervention_and_old_events_still_read(runs_dir):
    run = _run(runs_dir, 4)
    run.add_event("swa_started", "SWA started at epoch 3 (spec)", step=16, why="spec")
    run.add_event("swa_started", "SWA started at epoch 3 (resumed)", step=17)  # recorded before `why` was data
    run.add_event("swa_started", "SWA started at epoch 3 (command)", step=18)
    run.add_event("set_lr", "layer stem multiplier 0.5 (was set live)", step=22)  # no numbers in its data
    run.add_event("resumed", "training resumed", step=23)  # what `continued` was called before
    run.add_event("grad_spike", "grad norm 8 is 5x its running median", level="warning", step=24)
    run.add_event("checkpoint", "checkpoint written: last.pt", step=25)
    run.add_event("stopped", "cockpit stop", step=26)  # the worker records the reason the stop gave
    found = [(x["step"], x["action"], x["detail"]) for x in interventions(run.events_since(0))]
    run.close()
    assert found == [(18, "swa", "SWA started by command"), (22, "set-lr", "layer stem multiplier 0.5"),
                     (23, "continue", "training continued"), (26, "stop", "stopped: cockpit stop")]


def test_a_steered_run_and_its_twin_compare_with_what_was_done_in_every_format(runs_dir):
    a, b = steered(runs_dir), _run(runs_dir, 2)
    c = compare_runs([a, b])
    a.close(), b.close()
    assert [d["key"] for d in c["diff"]] == ["train.epochs"], "the specs differ in one field only..."
    assert len(c["interventions"][0]) == 9 and c["interventions"][1] == [], "...the runs in much more"
    assert json.loads(json.dumps(c))["interventions"][0][0] == {"step": 5, "epoch": 0.625, "action": "set-lr",
                                                               "detail": "base LR 0.2"}
    console = Console(width=100, record=True, file=open(os.devnull, "w"))
    console.print(terminal_compare(c, 100))
    text = console.export_text()
    assert INTERVENTIONS_TITLE in text and "TTA on the live model" in text and "base LR 0.2" in text
    row = next(line for line in text.splitlines() if "base LR 0.2" in line)
    assert row.split()[:4] == ["A", "5", "0.62", "set-lr"], row
    assert f"B{' ' * 2}" in text and NO_INTERVENTION in text
    html = render_compare_html(c)
    assert 'id="compare-interventions"' in html and "TTA on the live model" in html and "SWA LR 0.05" in html


def test_a_run_report_says_what_was_done_to_it_and_to_the_run_it_is_set_against(runs_dir):
    from cockpit.report.render.html import render_html
    from cockpit.report.render.md import render_markdown
    from cockpit.report.summary import summarize

    a, b = steered(runs_dir), _run(runs_dir, 2)
    s = summarize(a, against=b)
    a.close(), b.close()
    assert s["interventions"][5] == {"step": 14, "epoch": 1.75, "action": "pass", "detail": "TTA on the live model"}
    assert s["against"]["interventions"] == [] and [d["key"] for d in s["against"]["diff"]] == ["train.epochs"]
    md, html = render_markdown(s), render_html(s)
    for text in (md, html):
        assert INTERVENTIONS_TITLE in text and "TTA on the live model" in text and NO_INTERVENTION in text
    assert "| " + s["run"]["run_id"] + " | 5 | 0.62 | `set-lr` | base LR 0.2 |" in md


async def test_the_tui_comparison_lists_what_was_done(runs_dir):
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.screens.compare import CompareScreen

    from .test_tui import wait_for

    paths = []
    for run in (steered(runs_dir), _run(runs_dir, 2)):
        paths.append(run.path)
        run.close()
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.push_screen(CompareScreen(paths))
        cmp = await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.tables is not None
                             and app.screen, 15, what="the comparison")
        console = Console(width=78, record=True, file=open(os.devnull, "w"))
        console.print(cmp.tables)
        text = " ".join(console.export_text().split())  # the entries wrap
    assert "A step 5 set-lr base LR 0.2 · step 6 set-lr layer stem multiplier 0.5 · step 9 pause" in text
    assert INTERVENTIONS_TITLE in text and "TTA on the live model" in text and "SWA started by command" in text
    assert NO_INTERVENTION in text


@pytest.mark.slow
def test_a_run_steered_live_compares_to_its_twin_with_its_interventions(runs_dir, tmp_path):
    """A real worker: LR set live, paused, continued, SWA started by command, TTA on the live model, stopped;
    its twin (fewer epochs) untouched. `cockpit compare` (terminal and JSON) says so, and that the specs
    differ in train.epochs alone."""
    from engine.contracts import SetLR

    sets = [a for s in TINY_SETS if not s.startswith("train.epochs") for a in ("--set", s)]
    env = dict(os.environ, COCKPIT_RUNS=str(runs_dir))
    res = subprocess.run([sys.executable, "-m", "cockpit.cli", "run", "--detach", *sets, "--set", "train.epochs=400"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr
    run = next(Run(p) for p in runs_dir.iterdir())
    try:
        deadline = time.monotonic() + 120
        while run.last_step() < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        for command in (SetLR(lr=0.2), "pause", "continue", "swa", "tta"):
            cid = run.send_command(command, source="test")  # a typed command, or a kind without arguments
            row = run.wait_command(cid, timeout=120)
            assert row is not None and row["status"] == "done", (command, row and dict(row))
        stopped = cockpit("stop", run.run_id, env={"COCKPIT_RUNS": str(runs_dir)})
        assert stopped.returncode == 0, stopped.stderr
    finally:
        run.close()
    twin = cockpit("run", *sets, "--set", "train.epochs=1", env={"COCKPIT_RUNS": str(runs_dir)}, timeout=300)
    assert twin.returncode == 0, twin.stderr
    ids = sorted(p.name for p in runs_dir.iterdir())
    out = tmp_path / "c.json"
    js = cockpit("compare", *ids, "--format", "json", "--out", str(out), env={"COCKPIT_RUNS": str(runs_dir)})
    assert js.returncode == 0, js.stderr
    c = json.loads(out.read_text())
    assert [d["key"] for d in c["diff"]] == ["train.epochs"]
    steered_i = next(i for i, r in enumerate(c["runs"]) if r["state"] == "stopped")
    done = c["interventions"][steered_i]
    assert [x["action"] for x in done] == ["set-lr", "pause", "continue", "swa", "pass", "stop"], done
    assert done[0]["detail"] == "base LR 0.2" and done[0]["step"] >= 3
    assert done[4]["detail"] == "TTA on the live model"
    assert c["interventions"][1 - steered_i] == []
    term = cockpit("compare", *ids, env={"COCKPIT_RUNS": str(runs_dir)})
    assert term.returncode == 0, term.stderr
    assert "base LR 0.2" in term.stdout and "TTA on the live model" in term.stdout and NO_INTERVENTION in term.stdout
