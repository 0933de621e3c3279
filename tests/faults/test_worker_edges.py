"""The worker at its edges: a malformed command row, modules planted in
the launch directory, and two signals close together."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.launch import spawn
from engine.spec import load_spec
from engine.store import Run, resolve_run

from ..conftest import ROOT, TINY_SETS, cockpit
from .test_crashes import LONG, sets, start_detached, steps, wait_for

COCKPIT = Path(sys.executable).parent / "cockpit"  # the installed entry point, as a user starts it


def add_raw_command(run: Run, kind: str, args: str) -> int:
    """A commands row written past the typed door (an old client, a hand edit, a damaged table)."""
    con = sqlite3.connect(run.db_path, timeout=10)
    cur = con.execute("INSERT INTO commands (wall, kind, args, source) VALUES (?, ?, ?, 'test')", (time.time(), kind, args))
    con.commit()
    con.close()
    return int(cur.lastrowid)


@pytest.mark.slow
def test_a_malformed_command_is_acked_failed_and_the_run_trains_on_and_resumes(runs_dir):
    run = start_detached(runs_dir, LONG)
    wait_for(lambda: len(steps(run)) > 2, what="training")
    bad = [add_raw_command(run, "set_lr", "{not json"), add_raw_command(run, "explode", "{}"),
           add_raw_command(run, "set_lr", "[1, 2]")]
    wait_for(lambda: all(run.command(c)["status"] != "pending" for c in bad), 60, "the malformed rows' acks")
    for cid in bad:
        row = run.command(cid)
        assert row["status"] == "failed" and row["reply"].startswith("malformed"), dict(row)
    assert run.state() == "running", "the run trains on"
    assert sum(e["kind"] == "command_failed" for e in run.events_since()) == 3
    res = cockpit("stop", run.run_id)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: run.state() == "stopped", 60, "stopped")
    acked = [run.command(c)["acked_wall"] for c in bad]
    res = cockpit("resume", run.run_id, "--detach")
    assert res.returncode == 0, res.stderr
    stopped_at = len(steps(run))
    wait_for(lambda: run.state() == "running" and len(steps(run)) > stopped_at + 2, 60, "the resumed run training")
    assert [run.command(c)["acked_wall"] for c in bad] == acked, "acked once, never handled again"
    cockpit("stop", run.run_id)
    wait_for(lambda: run.state() == "stopped", 60, "stopped again")
    assert run.meta().get("error", "") == ""


@pytest.mark.slow
@pytest.mark.parametrize("module", ["sqlite3", "torch"])
def test_a_module_planted_in_the_launch_directory_never_runs_in_the_worker(tmp_path, module):
    marker = tmp_path / "planted-ran"
    (tmp_path / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('planted')\n")
    runs = tmp_path / "runs"
    res = subprocess.run([str(COCKPIT), "run", "--runs-dir", str(runs), *sets(TINY_SETS)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    run = resolve_run("last", runs)
    assert run.state() == "finished"
    assert not marker.exists(), "the planted module ran"


@pytest.mark.slow
@pytest.mark.parametrize("first,second,code", [(signal.SIGINT, signal.SIGTERM, 130), (signal.SIGTERM, signal.SIGINT, 143)])
def test_two_signals_to_the_cli_exit_with_the_first_ones_code_and_a_summary(runs_dir, first, second, code):
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "run", *sets(LONG)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, COLUMNS="300"))
    run = wait_for(lambda: (lambda d: Run(d[0]) if d and len(steps(Run(d[0]))) > 2 else None)(sorted(runs_dir.glob("2*"))),
                   what="training")
    proc.send_signal(first)
    time.sleep(0.3)
    proc.send_signal(second)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"run dir: {run.path}" in out and "train loss" in out, "the summary"
    assert run.state() == "stopped"


@pytest.mark.slow
@pytest.mark.parametrize("first,second,code", [(signal.SIGINT, signal.SIGTERM, 130), (signal.SIGTERM, signal.SIGINT, 143)])
def test_two_signals_to_the_worker_exit_with_the_first_ones_code(runs_dir, first, second, code):
    run = Run.create(runs_dir, load_spec(None, LONG))
    proc = spawn(run)
    wait_for(lambda: len(steps(run)) > 2, what="training")
    proc.send_signal(first)
    time.sleep(0.3)
    proc.send_signal(second)
    assert proc.wait(60) == code
    assert run.state() == "stopped"
    assert "Traceback" not in run.log_path.read_text()
