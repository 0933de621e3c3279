"""The run store at its edges: a damaged run.db, a missing spec.toml, a store
this process truly cannot write, and launches racing for a run id."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from cockpit.tui.app import CockpitApp
from cockpit.tui.screens.runs import RunsScreen
from engine.spec import RunSpec
from engine.store import Run, StoreError, resolve_run

from ..conftest import ROOT, cockpit


def finished_run(runs_dir: Path, name: str = "good", state: str = "finished") -> Run:
    """A run with a few metrics, as a finished worker leaves it (no training needed)."""
    run = Run.create(runs_dir, RunSpec(name=name))
    run.add_metrics([(s, s / 4, "train_loss", 2.0 / s) for s in range(1, 5)] + [(4, 1.0, "test_acc", 0.5)])
    run.set_meta(state=state, started=time.time(), ended=time.time())
    run.close()
    return run


def damage(runs_dir: Path, good: Run, how: str) -> Path:
    """A copy of `good` whose run.db is random bytes, truncated, or empty."""
    bad = runs_dir / f"20200101-000000-{how}"
    shutil.copytree(good.path, bad)
    db = bad / "run.db"
    data = db.read_bytes()
    db.write_bytes({"random": os.urandom(32768), "truncated": data[: len(data) // 3], "empty": b""}[how])
    return bad


DAMAGES = ("random", "truncated", "empty")


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


# ------------------------------------------------------------------------ 1. a damaged run.db


def test_a_damaged_run_db_is_listed_unreadable_and_hides_no_other_run(runs_dir):
    good = finished_run(runs_dir)
    bad = {how: damage(runs_dir, good, how) for how in DAMAGES}
    res = cockpit("runs")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert good.run_id in res.stdout and "finished" in res.stdout
    for how, path in bad.items():
        assert f"{path.name} is unreadable: run.db" in res.stdout, how
    assert "empty (0 bytes)" in res.stdout and "malformed" in res.stdout and "not a database" in res.stdout
    rows = [json.loads(line) for line in cockpit("runs", "--json").stdout.splitlines()]
    assert {r["run_id"]: r["state"] for r in rows} == {good.run_id: "finished"} | {p.name: "unreadable" for p in bad.values()}


@pytest.mark.parametrize("command", [["report"], ["attach"], ["stop"], ["resume"], ["calibrate"], ["set-lr", "RUN", "0.1"],
                                     ["compare", "RUN", "GOOD"], ["ensemble", "GOOD", "RUN"]])
def test_a_command_on_a_damaged_run_exits_2_with_one_line(runs_dir, command):
    good = finished_run(runs_dir)
    bad = damage(runs_dir, good, "random")
    args = [a.replace("RUN", bad.name).replace("GOOD", good.run_id) for a in command]
    if "RUN" not in command:
        args.append(bad.name)
    res = cockpit(*args, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert one_line(res.stderr) and str(bad / "run.db") in res.stderr and "not a database" in res.stderr


async def test_the_tui_runs_list_shows_a_damaged_run_as_unreadable(runs_dir):
    good = finished_run(runs_dir)
    bad = damage(runs_dir, good, "truncated")
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        for _ in range(100):
            if screen.query_one(DataTable).row_count == 2:
                break
            await pilot.pause(0.05)
        states = {r.run_id: (r.state, r.error) for r in screen.rows}
        assert states[good.run_id] == ("finished", "")
        assert states[bad.name][0] == "unreadable" and "malformed" in states[bad.name][1]
        table = screen.query_one(DataTable)
        table.move_cursor(row=[r.run_id for r in screen.rows].index(bad.name))
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen, "an unreadable run is not opened"
        assert any("cannot be opened" in str(n.message) for n in app._notifications)


# ------------------------------------------------------------------------ 2. a missing spec.toml


@pytest.mark.parametrize("command", ["swa", "calibrate", "tta", "resume", "ensemble"])
def test_a_missing_spec_exits_2_with_one_line_and_leaves_the_state(runs_dir, command):
    other = finished_run(runs_dir, "other")
    run = finished_run(runs_dir, "nospec", state="stopped")
    (run.checkpoints / "last.pt").write_bytes(b"")  # resume looks for a checkpoint first
    (run.path / "spec.toml").unlink()
    args = [command, run.run_id] + ([other.run_id] if command == "ensemble" else [])
    res = cockpit(*args, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert one_line(res.stderr) and "spec.toml cannot be read" in res.stderr
    assert Run(run.path).state() == "stopped" and not Run(run.path).meta().get("resume")


# ------------------------------------------------------------------------ 3. a read-only store


@pytest.fixture
def unwritable(tmp_path):
    """(source dir, the same dir as this process truly cannot write it): a read-only bind mount when
    this process may mount (root), else `chmod -R a-w` (which binds a non-root user)."""
    src, view = tmp_path / "src", tmp_path / "view"
    src.mkdir()
    view.mkdir()
    if os.geteuid() != 0:
        yield src, src
        subprocess.run(["chmod", "-R", "u+w", str(src)], check=False)
        return
    bind = subprocess.run(["mount", "--bind", str(src), str(view)], capture_output=True, text=True)
    if bind.returncode:
        pytest.skip(f"root, but this sandbox refuses a bind mount ({bind.stderr.strip()}); "
                    "chmod cannot bind root, so nothing here is truly unwritable")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True, text=True)
        if ro.returncode:
            pytest.skip(f"cannot remount read-only: {ro.stderr.strip()}")
        yield src, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)  # lazy: a leaked handle cannot keep it


def populate(src: Path) -> tuple[Run, Run]:
    """A finished run with its WAL files still there, and an archived one without them."""
    kept = finished_run(src, "kept")
    holder = sqlite3.connect(kept.path / "run.db")  # a reader left open keeps -wal and -shm on disk
    holder.execute("SELECT COUNT(*) FROM metrics").fetchone()
    archived = finished_run(src, "archived")
    con = sqlite3.connect(archived.path / "run.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    holder.close()
    return kept, archived


def test_every_reader_works_on_a_store_it_cannot_write(unwritable, tmp_path):
    src, view = unwritable
    kept, archived = populate(src)
    if view != src or os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(src)], check=True)
    with pytest.raises(OSError):
        (view / "probe").write_text("x")  # truly unwritable
    before = {p: p.read_bytes() for p in src.rglob("run.db")}
    env = {"COCKPIT_RUNS": str(view)}
    res = cockpit("runs", env=env)
    assert res.returncode == 0 and res.stdout.count("finished") == 2, res.stdout + res.stderr
    for run in (kept, archived):
        for args in (["report", run.run_id], ["attach", run.run_id],
                     ["report", run.run_id, "-f", "json", "-o", str(tmp_path / f"{run.run_id}.json")]):
            res = cockpit(*args, env=env, timeout=60)
            assert res.returncode == 0 and "Traceback" not in res.stderr, (args, res.stderr)
        assert json.loads((tmp_path / f"{run.run_id}.json").read_text())["run"]["state"] == "finished"
        found = resolve_run(run.run_id, view)
        assert found.readonly, "opened read-only without being asked"
        found.close()
    res = cockpit("report", kept.run_id, "-f", "md", env=env)
    assert res.returncode == 1 and one_line(res.stderr) and "--out" in res.stderr
    res = cockpit("stop", kept.run_id, env=env)
    assert res.returncode == 2 and one_line(res.stderr)
    assert {p: p.read_bytes() for p in src.rglob("run.db")} == before, "nothing was written"


async def test_the_tui_opens_a_run_on_a_store_it_cannot_write(unwritable):
    src, view = unwritable
    kept, _ = populate(src)
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(src)], check=True)
    app = CockpitApp(runs_dir=view, run=kept.run_id)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            if app.dashboard is not None and app.dashboard._seen_rows > 0:  # -1 until the first reading
                break
            await pilot.pause(0.05)
        assert app.dashboard.state == "finished" and app.dashboard._seen_rows > 0


def test_writing_to_a_read_only_store_is_a_store_error(tmp_path):
    run = finished_run(tmp_path)
    with pytest.raises(StoreError, match="read-only"):
        Run(run.path, readonly=True).set_meta(state="running")


# ------------------------------------------------------------------------ 4. racing launches


def _create(runs_dir: str, barrier, out) -> None:
    barrier.wait()
    try:
        out.put(Run.create(Path(runs_dir), RunSpec(name="race")).run_id)
    except Exception as exc:  # reported to the test, which fails on it
        out.put(f"ERROR {type(exc).__name__}: {exc}")


def test_eight_creates_at_once_get_eight_distinct_ids(tmp_path):
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_create, args=(str(tmp_path), barrier, out)) for _ in range(8)]
    for p in procs:
        p.start()
    ids = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert not [i for i in ids if i.startswith("ERROR")], ids
    assert len(set(ids)) == 8
    for run_id in ids:
        run = Run(tmp_path / run_id)
        assert run.meta()["run_id"] == run_id and run.spec().name == "race"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ids), "no temp folder left behind"


@pytest.mark.slow
def test_eight_cli_launches_at_once_all_run_with_distinct_ids(runs_dir):
    tiny = ["data.synthetic_train=64", "data.synthetic_test=32", "train.batch_size=32", "train.epochs=1",
            "train.threads=1", "model.width=4"]
    args = ["run", "--detach", *[a for s in tiny for a in ("--set", s)]]
    env = dict(os.environ, COLUMNS="100", NO_COLOR="1")
    procs = [subprocess.Popen([sys.executable, "-m", "cockpit.cli", *args], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1] for o in outs]
    runs = [Run(p) for p in sorted(runs_dir.iterdir())]
    assert len(runs) == 8 and len({r.run_id for r in runs}) == 8
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(r.reap() in ("created", "running") for r in runs):
        time.sleep(0.5)
    assert [r.state() for r in runs] == ["finished"] * 8, [r.meta().get("error") for r in runs]


def test_an_id_taken_between_the_guess_and_the_rename_moves_to_the_next(tmp_path, monkeypatch):
    from engine.store import layout

    first = Run.create(tmp_path, RunSpec(name="race"))
    monkeypatch.setattr(layout, "free_id", lambda base, runs_dir, _taken=[first.run_id]:
                        _taken.pop() if _taken else f"{base}-7")  # the first guess is already taken
    second = Run.create(tmp_path, RunSpec(name="race"))
    assert second.run_id.endswith("-7") and second.meta()["run_id"] == second.run_id
    assert f"run {second.run_id}," in (second.path / "spec.toml").read_text()
    assert Run(first.path).meta()["run_id"] == first.run_id, "the winner is untouched"


def test_a_launch_killed_mid_creation_leaves_nothing_the_next_one_keeps(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".quickstart.{dead.pid}.0badc0de.tmp"
    (stale / "checkpoints").mkdir(parents=True)
    mine = tmp_path / f".quickstart.{os.getpid()}.0badc0de.tmp"  # a live launch's folder is left alone
    mine.mkdir()
    run = Run.create(tmp_path, RunSpec())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([run.run_id, mine.name])
