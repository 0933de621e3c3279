"""Progress before the first step: the worker's phases in the store, and how the views say them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App, ComposeResult

from cockpit.cli.live import render
from cockpit.core.phase import startup_phase
from cockpit.core.tail import RunTail
from cockpit.tui.widgets.run_bar import RunBar
from engine.phases import BUILDING, LOADING, Phases
from engine.spec import RunSpec
from engine.store import Run

from .conftest import TINY_SETS, cockpit


def test_phases_and_data_progress_go_to_meta_and_changes_to_events(tmp_path):
    run = Run.create(tmp_path, RunSpec(name="ph"))
    phases = Phases(run, every_s=60)
    phases.set("importing torch")
    phases.progress("decoding train/", 0, 50000)
    phases.progress("decoding train/", 5000, 50000)  # throttled: within every_s of the last write
    assert run.meta()["phase"] | {"since": 0} == {"name": LOADING, "detail": "decoding train/", "done": 0,
                                                  "total": 50000, "since": 0}
    phases.progress("decoding train/", 50000, 50000)  # the end of a count is always written
    assert run.meta()["phase"]["name"] == BUILDING
    phases.progress("decoding test/", 0, 10000)  # the next split: shown, no second event for the phase
    assert run.meta()["phase"]["detail"] == "decoding test/"
    assert [e["message"] for e in run.events_since(0) if e["kind"] == "phase"] == [
        "importing torch", "loading data: decoding train/", "building the model"]
    Phases(None).set("anything")  # not the writer: nothing happens


def test_the_views_say_the_phase_instead_of_step_0_of_0():
    meta = {"phase": {"name": LOADING, "detail": "decoding train/", "done": 12800, "total": 50000, "since": 100.0}}
    phase = startup_phase(meta, "running", now=107.0)
    assert phase.text == "loading data · decoding train/ 12,800/50,000 (26%) · 7 s" and phase.fraction == 0.256
    assert startup_phase({}, "created").text == "starting the worker"
    assert startup_phase(meta | {"phase": None}, "running") is None, "training: the usual progress line"
    assert startup_phase(meta, "failed") is None


def _run_in_phase(tmp_path) -> Run:
    run = Run.create(tmp_path, RunSpec(name="ph"))
    run.set_meta(state="running", phase={"name": LOADING, "detail": "decoding train/", "done": 25000,
                                         "total": 50000, "since": time.time()})
    return run


def test_the_live_view_shows_the_phase(tmp_path):
    tail = RunTail(_run_in_phase(tmp_path))
    tail.poll()
    console = Console(width=100, record=True, color_system=None)
    console.print(render(tail, 100))
    text = console.export_text()
    assert "loading data · decoding train/ 25,000/50,000 (50%)" in text and "step 0/0" not in text


class BarApp(App):
    def compose(self) -> ComposeResult:
        yield RunBar(id="bar")


async def test_the_run_bar_shows_the_phase_at_80_columns(tmp_path):
    meta = _run_in_phase(tmp_path).meta()
    async with BarApp().run_test(size=(80, 4)) as pilot:
        bar = pilot.app.query_one(RunBar)
        bar.show("20261202-010203-ph", "running", meta, 0, {}, None, None)
        await pilot.pause()
        text = bar.render().plain
        assert "loading data · decoding train/ 25,000/50,000 (50%)" in text and "step 0/0" not in text
        assert "█" * 5 in text, "the bar fills with the phase's own count"


@pytest.mark.slow
def test_a_real_worker_records_its_phases_then_trains(runs_dir):
    res = cockpit("run", *[a for s in TINY_SETS for a in ("--set", s)], "--set", "train.epochs=1", timeout=120)
    assert res.returncode == 0, res.stderr
    from engine.store import resolve_run

    run = resolve_run("last", runs_dir)
    phases = [e["message"] for e in run.events_since(0) if e["kind"] == "phase"]
    assert phases[0] == "importing torch" and phases[-1] == "first step", phases
    assert any(p.startswith("loading data: generating synthetic train") for p in phases), phases
    assert run.meta()["phase"] is None, "cleared with the first metrics"
    report = cockpit("report", "last", "--format", "md", "--out", str(runs_dir.parent / "r.md"))
    assert report.returncode == 0 and "loading data: generating synthetic train" in (runs_dir.parent / "r.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_in_a_real_terminal_cockpit_run_shows_the_phase_before_the_first_step(runs_dir, tmp_path):
    """`cockpit run` at 80x24 in tmux: the live view says what the worker does before its first step
    (here: generating a large synthetic set), never `step 0/0`; Ctrl+C twice ends it."""
    binary = Path(sys.executable).with_name("cockpit")
    session = f"phases{os.getpid()}"
    cmd = (f"COCKPIT_RUNS={runs_dir} {binary} run --set data.synthetic_train=400000 --set train.threads=1 "
           f"--set train.epochs=1; sleep 30")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(tmp_path), cmd],
                   check=True)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "loading data" not in seen:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            seen |= {p for p in ("importing torch", "loading data", "step 0/0") if p in screen}
            time.sleep(0.1)
        assert "loading data" in seen, seen
        assert "step 0/0" not in seen
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], capture_output=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], capture_output=True)
        time.sleep(1)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
