"""Crashes, signals and corrupt files: the run store keeps its promises (DESIGN.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine import checkpoint as ckpt
from engine.spec import RunSpec
from engine.store import Run, resolve_run

from ..conftest import ROOT, TINY_SETS, cockpit

LONG = [*TINY_SETS, "train.epochs=40", "data.synthetic_train=512"]


def sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def wait_for(cond, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_detached(runs_dir: Path, items: list[str], env: dict | None = None) -> Run:
    res = cockpit("run", "--detach", *sets(items), env=env)
    assert res.returncode == 0, res.stderr
    return resolve_run("last", runs_dir)


def steps(run: Run) -> list[int]:
    return [s for s, _ in run.series("train_loss")]


@pytest.mark.slow
def test_kill_9_mid_epoch_marks_crashed_and_resume_continues(runs_dir):
    run = start_detached(runs_dir, LONG)
    wait_for(lambda: (run.checkpoints / "last.pt").exists() and len(steps(run)) > 12, what="a checkpoint")
    os.kill(run.meta()["pid"], signal.SIGKILL)
    wait_for(lambda: run.reap() == "crashed", 10, "crashed")
    res = cockpit("runs")
    assert "crashed" in res.stdout
    before = steps(run)
    assert before == sorted(before) and len(before) == len(set(before)), "every committed row is readable"
    last = ckpt.load(run.checkpoints / "last.pt")  # the last complete checkpoint loads
    res = cockpit("resume", run.run_id, "--detach")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: len(steps(run)) > len(before), what="training to continue")
    cockpit("stop", run.run_id)
    after = steps(run)
    assert len(after) == len(set(after)), "no duplicated steps after resume"
    assert after[: last["step"]] == list(range(1, last["step"] + 1))


@pytest.mark.slow
def test_kill_mid_checkpoint_write_keeps_the_previous_checkpoint(runs_dir):
    # the 3rd checkpoint write dies after its bytes hit the disk, before the rename
    run = start_detached(runs_dir, LONG, env={"COCKPIT_FAULT_INJECT": "kill-mid-write:3"})
    wait_for(lambda: run.reap() == "crashed", 120, "the injected crash")
    leftovers = list(run.checkpoints.glob(".*.tmp-*"))
    assert leftovers, "the crash happened mid-write"
    state = ckpt.load(run.checkpoints / "last.pt")
    assert state["step"] > 0
    res = cockpit("resume", run.run_id, "--detach")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: run.state() == "running" and len(steps(run)) > state["step"], what="resumed training")
    cockpit("stop", run.run_id)
    assert not list(run.checkpoints.glob(".*.tmp-*")), "stale temp files cleaned on resume"
    assert any(e["kind"] == "checkpoint_cleanup" for e in run.events_since())


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_worker_stops_cleanly(runs_dir, sig, code):
    run = start_detached(runs_dir, LONG)
    wait_for(lambda: len(steps(run)) > 3, what="training")
    pid = run.meta()["pid"]
    os.kill(pid, sig)
    wait_for(lambda: run.state() == "stopped", 60, "stopped")
    assert (run.checkpoints / "last.pt").is_file()
    state = ckpt.load(run.checkpoints / "last.pt")
    assert state["step"] == max(steps(run)), "metrics flushed up to the checkpoint"
    assert any(e["kind"] == "stopped" for e in run.events_since())


@pytest.mark.slow
def test_sigterm_to_the_headless_cli_stops_the_run_and_exits_143(runs_dir):
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "run", *sets(LONG)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = wait_for(lambda: (lambda d: Run(d[0]) if d and steps(Run(d[0])) else None)(sorted(runs_dir.glob("2*"))),
                   what="training")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert run.state() == "stopped"


def test_a_checkpoint_with_pickled_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    bad = tmp_path / "last.pt"
    torch.save({"model": {}, "payload": Evil()}, bad)
    with pytest.raises(ckpt.CheckpointError, match="refused"):
        ckpt.load(bad)
    assert not marker.exists(), "no code from the file ran"


@pytest.mark.parametrize("damage", ["truncate", "zeros"])
def test_a_corrupt_checkpoint_is_reported_and_the_previous_good_one_used(tmp_path, damage):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"step": 1, "w": torch.ones(1000)}, path)
    ckpt.save_atomic({"step": 2, "w": torch.ones(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\0" * len(data))
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load(path)
    state, used, problems = ckpt.load_latest_good(path)
    assert state["step"] == 1 and used.name == "last.prev.pt"
    assert "corrupt" in problems[0]


def test_a_failed_write_leaves_the_current_checkpoint_alone(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ckpt.save_atomic({"step": 1}, path)

    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(ckpt.CheckpointError, match="No space left"):
        ckpt.save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert ckpt.load(path)["step"] == 1
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_an_unwritable_runs_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    res = cockpit("run", "--runs-dir", str(blocker / "runs"))
    assert res.returncode == 2
    assert "cannot create runs dir" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_asked_for_where_there_is_none(runs_dir):
    res = cockpit("run", *sets([*TINY_SETS, "train.device=cuda"]))
    assert res.returncode == 2
    assert "no CUDA device" in res.stderr and "train.device" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_reader_never_blocks_the_writer(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    reader = Run(run.path)
    reader.con.execute("BEGIN")
    reader.con.execute("SELECT COUNT(*) FROM metrics").fetchone()  # an open read transaction
    t0 = time.monotonic()
    run.add_metrics([(1, 0.0, "train_loss", 1.0)])
    assert time.monotonic() - t0 < 1.0
    reader.con.execute("COMMIT")
    assert reader.series("train_loss") == [(1, 1.0)]
