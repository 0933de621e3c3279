"""The run store: layout, WAL, a reader process beside a writer, commands, crash marking."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from engine.contracts import TTA, CommandError, HardestResult, HardExample, Pause, SetLR
from engine.spec import RunSpec, load_spec
from engine.store import SCHEMA_VERSION, PendingCommand, Run, StoreError, active_runs, new_run_id, resolve_run


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


def test_commands_round_trip_as_typed_models(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    cid = run.send_command("set_lr", source="test", lr=0.01)
    tid = run.send_command(TTA(views=["identity", "flip"], random_views=2), source="test")
    assert run.pending_commands() == [PendingCommand(cid, "set_lr", SetLR(lr=0.01)),
                                      PendingCommand(tid, "tta", TTA(views=["identity", "flip"], random_views=2))]
    run.ack_command(cid, "done", "ok")
    run.ack_command(tid, "done", "ok")
    assert run.pending_commands() == []
    assert run.command(cid)["status"] == "done"


@pytest.mark.parametrize("kind, args, problem", [
    ("set_lr", {"lr": float("nan")}, "finite number > 0"),
    ("set_lr", {"lr": float("inf")}, "finite number > 0"),
    ("set_lr", {"lr": 0.0}, "finite number > 0"),
    ("set_lr", {"lr": -0.1}, "finite number > 0"),
    ("set_lr", {"layer": "stem", "mult": float("nan")}, "finite number > 0"),
    ("set_lr", {"rate": 0.1}, "rate"),
    ("resume", {}, "unknown command 'resume'"),
    ("tta", {"combine": "median"}, "combine"),
])
def test_a_bad_command_is_refused_at_the_door(tmp_path, kind, args, problem):
    run = Run.create(tmp_path, RunSpec())
    with pytest.raises(CommandError, match=re.escape(problem)):
        run.send_command(kind, source="test", **args)
    assert run.pending_commands() == []  # nothing was written


def test_a_malformed_command_row_comes_back_with_the_reason(tmp_path):
    """A row written behind the API's back (an old client, a damaged table) is reported, not fatal."""
    run = Run.create(tmp_path, RunSpec())
    with run.transaction():
        run.con.execute("INSERT INTO commands (wall, kind, args) VALUES (0, 'set_lr', 'not json')")
        run.con.execute("""INSERT INTO commands (wall, kind, args) VALUES (0, 'set_lr', '{"lr": -1}')""")
    good = run.send_command(Pause())
    pending = run.pending_commands()
    assert [p.command for p in pending] == [None, None, Pause()]
    assert all(p.error.startswith("malformed:") for p in pending[:2]) and pending[2].id == good


def test_results_are_typed_on_write_and_on_read(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    hardest = HardestResult(examples=[HardExample(index=3, label=1, pred=2, loss=4.5)])
    run.add_result(hardest, step=7)
    with pytest.raises(TypeError):
        run.add_result({"examples": []}, step=8)  # a bare dict is not a result
    with run.transaction():  # a row this version cannot read is skipped, not fatal
        run.con.execute("INSERT INTO results (wall, step, kind, data) VALUES (0, 9, 'tta', '{\"tta_acc\": 1}')")
    rows = run.results()
    assert [(r.kind, r.step, r.data) for r in rows] == [("hardest", 7, hardest)]
    assert run.results("hardest", after_id=rows[0].id) == []


def test_a_run_whose_worker_died_is_marked_crashed(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run.set_meta(state="running", pid=proc.pid)
    reader = Run(run.path, readonly=True)
    assert reader.observed_state() == "crashed" and reader.reap() == "crashed"
    assert run.state() == "running", "reading never writes, a read-only reap neither"
    assert run.reap() == "crashed"
    assert run.meta()["state"] == "crashed"
    assert any(e["kind"] == "crashed" for e in run.events_since())


def test_a_live_worker_is_not_marked_crashed(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    run.set_meta(state="running", pid=os.getpid())
    assert run.state() == "running"


def test_active_runs_are_the_live_ones_and_the_dead_are_marked(tmp_path):
    """What the TUI asks at start: finished and damaged runs are passed over, a run whose worker is gone
    is marked crashed (as `cockpit runs` marks it), a live one is active."""
    finished, live, dead, damaged = (Run.create(tmp_path, RunSpec(name=n)) for n in ("f", "live", "dead", "bad"))
    finished.set_meta(state="finished")
    live.set_meta(state="running", pid=os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead.set_meta(state="paused", pid=proc.pid)
    for run in (finished, live, dead, damaged):
        run.close()
    (damaged.path / "run.db").write_bytes(b"not a database" * 100)
    assert active_runs(tmp_path) == [live.path]
    assert Run(dead.path).state() == "crashed"
    assert active_runs(tmp_path / "nowhere") == []


def test_resolve_by_id_prefix_path_and_last(tmp_path):
    a = Run.create(tmp_path, RunSpec(name="alpha"))
    b = Run.create(tmp_path, RunSpec(name="beta"))
    assert resolve_run(a.run_id, tmp_path).path == a.path
    assert resolve_run(str(b.path)).path == b.path
    assert resolve_run("beta", tmp_path).path == b.path
    assert resolve_run("last", tmp_path).path == max(a.path, b.path)
    with pytest.raises(StoreError, match="no run"):
        resolve_run("gamma", tmp_path)


def test_any_unique_part_of_an_id_names_a_run_and_several_matches_list_them(tmp_path):
    ids = ["20261201-213842-sgd", "20261201-220000-sgd", "20261202-080000-adamw"]
    for run_id in ids:
        (tmp_path / run_id).mkdir()
        sqlite3.connect(tmp_path / run_id / "run.db").execute("CREATE TABLE meta (key TEXT, value TEXT)").connection.close()
    assert resolve_run("213842", tmp_path).run_id == ids[0]  # from the middle of the id
    assert resolve_run("adam", tmp_path).run_id == ids[2]
    with pytest.raises(StoreError) as err:
        resolve_run("-sgd", tmp_path)
    assert "matches 2 runs" in str(err.value) and ids[0] in str(err.value) and ids[1] in str(err.value)


def test_a_run_stored_before_data_seed_keeps_its_split(tmp_path):
    """Runs written before data.seed existed drew their split and synthetic images from train.seed:
    a pass that rebuilds their data must get the same images back."""
    run = Run.create(tmp_path, load_spec(None, ["train.seed=7", "data.seed=3"]))
    assert run.spec().data.seed == 3
    text = (run.path / "spec.toml").read_text()
    (run.path / "spec.toml").write_text("\n".join(line for line in text.splitlines()
                                                  if not line.startswith("seed = 3")) + "\n")
    assert run.spec().data.seed == 7 and run.spec().train.seed == 7


def test_a_command_past_its_deadline_is_expired_never_taken_and_a_taken_one_is_never_expired(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    late = run.send_command(SetLR(lr=0.1), source="cli", deadline=time.time() - 1)
    assert not run.take_command(late), "the worker never takes a command whose client has given up"
    assert run.command(late)["status"] == "expired"
    withdrawn = run.send_command(Pause(), source="cli", deadline=time.time() + 60)
    assert run.expire_command(withdrawn, "gave up") and not run.take_command(withdrawn)
    assert dict(run.command(withdrawn))["reply"] == "gave up"
    taken = run.send_command(Pause(), source="cli", deadline=time.time() + 60)
    assert run.take_command(taken) and not run.expire_command(taken, "too late"), "taken: it will run, say so"
    assert run.wait_command(taken, timeout=0.2) is None, "taken is not an answer yet"
    assert run.taken_commands() == [(taken, "pause")]
    run.ack_command(taken, "done", "paused")
    assert run.wait_command(taken, timeout=1)["status"] == "done"
    forever = run.send_command(Pause(), source="tui")
    assert [p.id for p in run.pending_commands()] == [forever] and run.take_command(forever)


def test_a_run_db_from_before_command_deadlines_gets_the_column(tmp_path):
    run = Run.create(tmp_path, RunSpec())
    run.con.execute("ALTER TABLE commands DROP COLUMN deadline")
    run.close()
    run = Run(run.path)
    cid = run.send_command(Pause(), source="cli", deadline=time.time() + 5)
    assert run.pending_commands()[0].deadline == pytest.approx(time.time() + 5, abs=2) and run.take_command(cid)


def test_a_live_pid_that_is_another_process_reads_crashed(tmp_path):
    """After a reboot (or pid reuse) a run's recorded pid names another process: its start token differs."""
    import socket

    from engine.store import process_start

    run = Run.create(tmp_path, RunSpec())
    me = os.getpid()
    run.set_meta(state="running", host=socket.gethostname(), pid=me, pid_start=process_start(me))
    assert run.observed_state() == "running"
    run.set_meta(pid_start=f"another:{process_start(me)}")
    assert run.observed_state() == "crashed" and run.reap() == "crashed" and run.state() == "crashed"


def test_the_heartbeat_beats_from_its_own_thread_and_a_silent_run_is_not_responding(tmp_path, monkeypatch):
    import socket

    from engine.store import NOT_RESPONDING, Heartbeat, process_start, shown_state

    monkeypatch.setenv("COCKPIT_NOT_RESPONDING_S", "0.5")  # a beat every 0.1 s
    run = Run.create(tmp_path, RunSpec())
    run.set_meta(state="running", host=socket.gethostname(), pid=os.getpid(), pid_start=process_start(os.getpid()),
                 heartbeat=time.time() - 10)
    assert run.shown_state() == NOT_RESPONDING
    beat = Heartbeat(run.path).start()
    try:
        assert run.shown_state() == "running", "the first beat lands before start() returns"
        first = run.meta()["heartbeat"]
        time.sleep(0.35)
        assert run.meta()["heartbeat"] > first
    finally:
        beat.stop()
    time.sleep(0.7)
    assert run.shown_state() == NOT_RESPONDING
    assert shown_state("paused", {"heartbeat": time.time() - 1}) == NOT_RESPONDING
    assert shown_state("finished", {"heartbeat": 0.0}) == "finished", "only a live run can be not responding"
    assert shown_state("running", {}) == "running", "a run from before heartbeats is judged by its pid alone"
