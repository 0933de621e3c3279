"""The run store: layout, WAL, a reader process beside a writer, commands, crash marking."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from engine.spec import RunSpec
from engine.store import SCHEMA_VERSION, Run, StoreError, new_run_id, resolve_run


def test_create_lays_out_the_run_dir(tmp_path):
    run = Run.create(tmp_path / "runs", RunSpec(name="demo"), preset="p.toml")
    assert run.path.parent == tmp_path / "runs"
    assert (run.path / "spec.toml").is_file() and (run.path / "checkpoints").is_dir()
    assert run.spec() == RunSpec(name="demo")
    meta = run.meta()
    assert meta["schema_version"] == SCHEMA_VERSION and meta["state"] == "created" and meta["preset"] == "p.toml"
    mode = sqlite3.connect(run.db_path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    tables = {r[0] for r in sqlite3.connect(run.db_path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "metrics", "events", "commands", "results"} <= tables


def test_run_ids_sort_by_time_read_well_and_never_clash(tmp_path):
    from datetime import datetime

    rid = new_run_id("sgd_cosine", tmp_path, datetime(2026, 11, 27, 23, 19, 0))
    assert rid == "20261127-231900-sgd_cosine"
    (tmp_path / rid).mkdir()
    assert new_run_id("sgd_cosine", tmp_path, datetime(2026, 11, 27, 23, 19, 0)) == rid + "-2"
    a = Run.create(tmp_path, RunSpec())
    b = Run.create(tmp_path, RunSpec())
    assert a.run_id != b.run_id


def test_unwritable_runs_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create runs dir"):
        Run.create(blocker / "runs", RunSpec())


def _writer(path: str, n: int) -> None:
    run = Run(path)
    for i in range(n):
        run.add_metrics([(i, i / 10, "train_loss", 1.0 / (i + 1)), (i, i / 10, "lr", 0.1)])
        time.sleep(0.002)


def test_a_reader_process_sees_rows_grow_while_a_writer_writes(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(run.path), 300))
    proc.start()
    reader = Run(run.path)
    seen, last_id, counts = [], 0, []
    deadline = time.monotonic() + 60
    while proc.is_alive() and time.monotonic() < deadline:
        last_id, rows = reader.metrics_since(last_id)
        seen += rows
        counts.append(len(seen))
        time.sleep(0.01)
    proc.join()
    last_id, rows = reader.metrics_since(last_id)
    seen += rows
    assert proc.exitcode == 0
    assert len(seen) == 600
    assert len(set(counts)) > 2, "the reader saw the table grow, not just the end"
    steps = [m.step for m in seen if m.name == "train_loss"]
    assert steps == sorted(steps) == list(range(300))


def test_commands_round_trip(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    cid = run.send_command("set_lr", source="test", lr=0.01)
    assert run.pending_commands() == [(cid, "set_lr", {"lr": 0.01})]
    run.ack_command(cid, "done", "ok")
    assert run.pending_commands() == []
    assert run.command(cid)["status"] == "done"


def test_a_run_whose_worker_died_is_marked_crashed(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run.set_meta(state="running", pid=proc.pid)
    assert run.state() == "crashed"
    assert run.meta()["state"] == "crashed"
    assert any(e["kind"] == "crashed" for e in run.events_since())


def test_a_live_worker_is_not_marked_crashed(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    run.set_meta(state="running", pid=os.getpid())
    assert run.state() == "running"


def test_resolve_by_id_prefix_path_and_last(tmp_path):
    a = Run.create(tmp_path, RunSpec(name="alpha"))
    b = Run.create(tmp_path, RunSpec(name="beta"))
    assert resolve_run(a.run_id, tmp_path).path == a.path
    assert resolve_run(str(b.path)).path == b.path
    assert resolve_run("beta", tmp_path).path == b.path
    assert resolve_run("last", tmp_path).path == max(a.path, b.path)
    with pytest.raises(StoreError, match="no run"):
        resolve_run("gamma", tmp_path)
