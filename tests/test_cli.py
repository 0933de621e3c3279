"""The CLI as a user drives it: real subprocesses, the real worker, a real run store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.store import Run, list_run_dirs, resolve_run

from .conftest import ROOT, TINY_SETS, cockpit


def sets(*extra: str) -> list[str]:
    out = []
    for s in [*TINY_SETS, *extra]:
        out += ["--set", s]
    return out


@pytest.mark.slow
def test_run_trains_through_the_worker_and_records_the_run(runs_dir):
    res = cockpit("run", *sets(), timeout=180)
    assert res.returncode == 0, res.stderr + res.stdout
    [path] = list_run_dirs(runs_dir)
    assert f"run dir: {path}" in res.stdout.replace("\n", "")
    run = Run(path)
    assert run.state() == "finished"
    losses = run.series("train_loss")
    assert len(losses) == 2 * (256 // 64), "one loss per step at monitor.every=1"
    accs = run.series("test_acc")
    assert len(accs) == 2, "test accuracy at each epoch"
    assert (path / "checkpoints" / "last.pt").is_file() and (path / "checkpoints" / "best.pt").is_file()
    assert (path / "worker.log").read_text().strip(), "the worker's output goes to its log"
    assert run.meta()["preset"] == "quickstart"
    table = res.stdout[res.stdout.rindex("┃ metric"):]  # the end-of-run table, under the live view
    assert "│ train loss " in table and "│ test accuracy " in table, table
    assert "train_loss" not in res.stdout and "test_acc" not in res.stdout, "labels, never raw metric names"


@pytest.mark.slow
def test_a_second_terminal_sees_the_metrics_grow(runs_dir):
    res = cockpit("run", "--detach", *sets("train.epochs=6", "data.synthetic_train=1024"))
    assert res.returncode == 0, res.stderr
    run = resolve_run("last", runs_dir)
    counts = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts.append(len(run.series("train_loss")))
        if run.state() not in ("created", "running"):
            break
        time.sleep(0.2)
    assert run.state() == "finished"
    grew = sorted(set(counts))
    assert len(grew) >= 3, f"saw the loss series grow while training, got counts {grew}"


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_exit_130(runs_dir):
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "run", *sets("train.epochs=200")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, NO_COLOR="1"))
    deadline = time.monotonic() + 60
    run = None
    while time.monotonic() < deadline:
        dirs = list_run_dirs(runs_dir)
        if dirs and Run(dirs[0]).series("train_loss"):
            run = Run(dirs[0])
            break
        time.sleep(0.1)
    assert run is not None, "training started"
    proc.send_signal(signal.SIGINT)
    out, errtext = proc.communicate(timeout=60)
    assert proc.returncode == 130, errtext
    assert run.state() == "stopped"
    assert (run.checkpoints / "last.pt").is_file()
    cmds = run.con.execute("SELECT kind, source, status FROM commands").fetchall()
    assert [tuple(c) for c in cmds] == [("stop", "cli", "done")]


def test_bad_preset_exits_2_and_creates_nothing(runs_dir, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlr = -1\n[train]\nbatch_size = 0\n")
    res = cockpit("run", str(bad))
    assert res.returncode == 2
    assert "optim.lr" in res.stderr and "train.batch_size" in res.stderr
    assert not runs_dir.exists() or not list(runs_dir.iterdir())


def test_invalid_toml_exits_2_naming_file_line_col(runs_dir, tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("name = 'x'\n[train\n")
    res = cockpit("run", str(bad))
    assert res.returncode == 2
    assert f"{bad}:2:" in res.stderr


def test_missing_preset_and_unknown_set_key_exit_2(runs_dir):
    res = cockpit("run", "no_such_preset")
    assert res.returncode == 2 and "no preset file or name 'no_such_preset'" in res.stderr
    res = cockpit("run", "--set", "optim.lrr=0.1")
    assert res.returncode == 2 and "unknown key" in res.stderr and "optim.lr" in res.stderr
    assert not runs_dir.exists()


def test_spec_check_prints_the_resolved_spec():
    res = cockpit("spec", "check", "sgd_cosine", "--set", "optim.lr=0.1")
    assert res.returncode == 0, res.stderr
    assert "lr = 0.1" in res.stdout and 'name = "resnet18"' in res.stdout


def test_spec_schema_is_json():
    res = cockpit("spec", "schema")
    assert res.returncode == 0
    assert "RunSpec" in json.loads(res.stdout)["title"]


def test_unknown_run_exits_2(runs_dir):
    res = cockpit("attach", "nope")
    assert res.returncode == 2 and "no run 'nope'" in res.stderr


def test_runs_lists_runs_with_state_and_best_accuracy(runs_dir):
    from engine.spec import RunSpec

    run = Run.create(runs_dir, RunSpec(name="listed"), preset="presets/listed.toml")
    run.set_meta(state="finished", started=time.time())
    run.add_metrics([(10, 1.0, "test_acc", 0.5), (20, 2.0, "test_acc", 0.75)])
    res = cockpit("runs", "--json")
    [row] = [json.loads(line) for line in res.stdout.splitlines()]
    assert row["run_id"] == run.run_id and row["state"] == "finished" and row["best_acc"] == 0.75
    res = cockpit("runs")
    assert run.run_id in res.stdout and "75.00%" in res.stdout and "finished" in res.stdout


def test_runs_lists_newest_first_as_the_tui_does_and_reverse_turns_it(runs_dir):
    from engine.spec import RunSpec

    ids = []
    for i in range(3):
        run = Run.create(runs_dir, RunSpec(name=f"order{i}"))
        ids.append(run.run_id)
        run.close()
    assert ids == sorted(ids), "ids sort by creation time"
    listed = [json.loads(line)["run_id"] for line in cockpit("runs", "--json").stdout.splitlines()]
    assert listed == ids[::-1]
    table = cockpit("runs").stdout
    assert table.index(ids[2]) < table.index(ids[1]) < table.index(ids[0])
    listed = [json.loads(line)["run_id"] for line in cockpit("runs", "--json", "--reverse").stdout.splitlines()]
    assert listed == ids


def test_the_top_level_runs_dir_and_a_part_of_an_id_reach_every_command(tmp_path, monkeypatch):
    """`cockpit --runs-dir DIR CMD` (as the top-level help shows it) and COCKPIT_RUNS both work;
    a run is named by any unique part of its id; several matches exit 2 listing them."""
    from engine.spec import RunSpec

    monkeypatch.delenv("COCKPIT_RUNS", raising=False)
    elsewhere = tmp_path / "elsewhere"
    runs = [Run.create(elsewhere, RunSpec(name=n)) for n in ("alpha", "beta")]
    res = cockpit("--runs-dir", str(elsewhere), "runs", "--json", cwd=tmp_path)
    assert sorted(json.loads(line)["run_id"] for line in res.stdout.splitlines()) == [r.run_id for r in runs]
    out = tmp_path / "r.json"
    res = cockpit("--runs-dir", str(elsewhere), "report", "lph", "--format", "json", "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(out.read_text())["run"]["run_id"] == runs[0].run_id
    res = cockpit("report", runs[0].run_id[:8], env={"COCKPIT_RUNS": str(elsewhere)}, cwd=tmp_path)
    assert res.returncode == 2 and runs[0].run_id in res.stderr and runs[1].run_id in res.stderr


def test_reading_never_writes_and_listing_marks_dead_workers(runs_dir):
    """A report reads a dead worker's run as crashed and leaves run.db alone; `cockpit runs` (which
    owns it) records the crash."""
    import socket

    from engine.spec import RunSpec

    run = Run.create(runs_dir, RunSpec(name="orphan"))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run.set_meta(state="running", started=time.time(), pid=proc.pid, host=socket.gethostname())
    run.close()
    db = run.path / "run.db"
    before = db.read_bytes()
    res = cockpit("report", run.run_id, "--format", "json", "--out", str(runs_dir.parent / "r.json"))
    assert res.returncode == 0, res.stderr
    assert json.loads((runs_dir.parent / "r.json").read_text())["run"]["state"] == "crashed"
    assert db.read_bytes() == before and Run(run.path).state() == "running", "the report wrote nothing"
    res = cockpit("runs", "--json")
    assert json.loads(res.stdout)["state"] == "crashed"
    assert Run(run.path).state() == "crashed"


def test_the_one_launch_path_refuses_a_layout_before_creating_anything(tmp_path):
    """`cockpit run` and the TUI editor both start runs through cockpit.core.launch."""
    from cockpit.core.launch import LaunchError, Layout, create_run
    from engine.spec import RunSpec

    spec = RunSpec()  # global batch 64 by default
    runs = tmp_path / "runs"
    for layout, problem in ((Layout(nproc_per_node=3), "must divide by the 3 processes"),
                            (Layout(sync_bn=True), "--sync-bn needs several processes"),
                            (Layout(nproc_per_node=2, nnodes=2), "--rdzv-endpoint")):
        with pytest.raises(LaunchError, match=problem):
            create_run(runs, spec, "quickstart", layout)
    assert not runs.exists()
    run = create_run(runs, spec, "quickstart", Layout(nproc_per_node=2, sync_bn=True))
    assert run.meta()["sync_bn"] is True


def test_presets_are_found_by_name_from_any_folder(tmp_path):
    """`cockpit run sgd_cosine` names a preset of the project, wherever the user stands."""
    res = cockpit("spec", "check", "sgd_cosine", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"resolved from {ROOT / 'presets' / 'sgd_cosine.toml'}" in res.stdout


def test_an_error_message_keeps_its_brackets():
    """What the user typed is echoed whole in an error, never eaten as markup."""
    res = cockpit("spec", "check", "--set", "data.source=[bold]")
    assert res.returncode == 2
    assert "got '[bold]'" in res.stderr
