"""A full disk: one line saying the disk is full and where, nothing left behind,
and no run left in a state nothing will end. A small tmpfs where this machine lets us mount one;
the same errors injected everywhere."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import torch

from cockpit.core.launch import start_worker
from engine import checkpoint as ckpt
from engine import atomic_write, launch
from engine.spec import RunSpec
from engine.store import NEVER_STARTED, Run, StoreError

from ..conftest import TINY_SETS, cockpit
from .test_crashes import sets


@pytest.fixture
def small_disk(tmp_path, request):
    """A tmpfs of `request.param` bytes (skipped where this process may not mount one)."""
    where = tmp_path / "disk"
    where.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({res.stderr.strip() or 'not root'}); the injected tests cover it")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp") or ".tmp-" in p.name]


@pytest.mark.parametrize("small_disk", ["16k"], indirect=True)
def test_no_room_for_a_run_is_one_line_and_leaves_nothing(small_disk):
    res = cockpit("run", "--runs-dir", str(small_disk / "runs"), *sets(TINY_SETS))
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "the disk is full at" in res.stderr
    assert not any((small_disk / "runs").iterdir()), "nothing left behind"


@pytest.mark.slow
@pytest.mark.parametrize("small_disk", ["400k"], indirect=True)
def test_a_disk_that_fills_while_training_fails_the_run_with_one_message(small_disk):
    runs = small_disk / "runs"
    res = cockpit("run", "--runs-dir", str(runs), *sets([*TINY_SETS, "train.epochs=6"]))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "the disk is full at" in res.stderr
    (run_dir,) = list(runs.iterdir())
    assert Run(run_dir).state() == "failed" and "disk is full" in Run(run_dir).meta()["error"]
    assert not leftovers(runs)


def test_sqlite_full_at_creation_is_a_store_error_and_leaves_nothing(tmp_path, monkeypatch):
    real = sqlite3.connect

    class Full(sqlite3.Connection):
        def executescript(self, _sql):
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real(*a, factory=Full, **k))
    with pytest.raises(StoreError, match=f"the disk is full at {tmp_path}"):
        Run.create(tmp_path, RunSpec())
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_enospc_from_a_checkpoint_write_names_the_full_disk(tmp_path, monkeypatch):
    def short_write(_obj, _f):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . unexpected pos 128960 vs 128848")

    monkeypatch.setattr(torch, "save", short_write)
    monkeypatch.setattr(atomic_write, "LOW_SPACE", 1 << 62)  # every disk is nearly full now
    with pytest.raises(ckpt.CheckpointError, match="the disk is full at"):
        ckpt.save_atomic({"step": 1}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_worker_that_cannot_be_recorded_leaves_no_run_behind(tmp_path, monkeypatch):
    run = Run.create(tmp_path, RunSpec())
    real = Run.set_meta
    started = []

    def full(self, **values):
        if "pid" in values:
            started.append(values["pid"])
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, **values)

    monkeypatch.setattr(Run, "set_meta", full)
    monkeypatch.setattr(launch, "launch_command", lambda *a, **k: ["sleep", "60"])
    with pytest.raises(StoreError, match="the disk is full"):
        start_worker(run)
    with pytest.raises(ProcessLookupError):
        os.kill(started[0], 0)  # the worker nobody could find was stopped
    monkeypatch.undo()
    assert Run(run.path).state() == "failed" or not run.path.exists()


def test_a_run_no_worker_ever_took_reads_as_crashed_and_is_recorded(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    assert run.observed_state() == "created"
    run.set_meta(created=time.time() - 3600)
    assert run.observed_state() == "crashed"
    assert run.reap() == "crashed" and run.meta()["error"] == NEVER_STARTED
