"""Sweeps in a real PostgreSQL: two `join` workers on one study (machines that share no filesystem
share a sweep this way), and the storage's password in no output and no file. .ci/run starts a
throwaway cluster (.ci/postgres) and sets COCKPIT_TEST_PG_URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from engine.store import iter_runs

from .conftest import ROOT, cockpit
from .sweep_util import write_sweep
from .test_sweep_run import _wait_for, two_workers_share_one_study

PG_URL = os.environ.get("COCKPIT_TEST_PG_URL", "")
PW = "Xw4rPq8zLm"  # distinctive: grepped for in every output and every file under runs/

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="no PostgreSQL: set COCKPIT_TEST_PG_URL (.ci/run starts one with "
                                                    ".ci/postgres where Debian's postgresql package installs)")]


def test_two_join_workers_on_one_postgresql_study_never_run_the_same_trial(tmp_path, runs_dir):
    pytest.importorskip("psycopg")
    # one database for several test runs: the study name must be new each time
    two_workers_share_one_study(tmp_path, runs_dir, storage=PG_URL, name=f"pair_{uuid.uuid4().hex[:8]}")
    assert not list(runs_dir.glob("sweeps/*/journal.log"))  # the study lived in the database


def _with_password(url: str, form: str) -> str:
    """CI's URL (postgresql+psycopg://cockpit@HOST:PORT/DB, trust auth: any password is accepted) with
    PW in one of the forms a user may write it."""
    scheme, rest = url.split("://", 1)
    user, where = rest.split("@", 1)
    if form == "user":
        return f"{scheme}://{user}:{PW}@{where}"
    if form == "empty_user":
        return f"{scheme}://:{PW}@{where}?user={user}"
    return f"{scheme}://{user}@{where}?password={PW}"


def test_the_storage_password_is_in_no_output_and_no_file_after_an_interrupted_and_resumed_sweep(tmp_path, runs_dir):
    pytest.importorskip("psycopg")
    name = f"secret_{uuid.uuid4().hex[:8]}"
    path = write_sweep(tmp_path, name, {"a": 0.1, "b": 0.2}, [0], epochs=30)
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "sweep", str(path), "--runs-dir", str(runs_dir),
                             "--storage", _with_password(PG_URL, "empty_user")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
    assert _wait_for(lambda: any(r.state() == "running" and r.last_step() > 0
                                 for r in iter_runs(runs_dir, readonly=True)))
    proc.send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=120)[0]]
    assert proc.returncode == 143, outputs[0]
    assert f"cockpit sweep resume {name} --storage postgresql+psycopg://:***@" in outputs[0]
    for form, command in (("user", ["resume", name]), ("query", ["status", name]), ("query", ["status", name, "--json"]),
                          ("user", ["report", name])):
        r = cockpit("sweep", *command, "--runs-dir", str(runs_dir), "--storage", _with_password(PG_URL, form),
                    timeout=300)
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 0, outputs[-1]
    runs = list(iter_runs(runs_dir))
    assert sorted(r.meta()["sweep_config"] for r in runs) == ["a", "b"] and all(r.state() == "finished" for r in runs)
    assert all(r.meta()["sweep_storage"].startswith("postgresql+psycopg://") for r in runs)
    for args in (["runs", "--json"], ["report", runs[0].run_id, "--format", "all"]):
        r = cockpit(*args, "--runs-dir", str(runs_dir))
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 0, outputs[-1]
    r = cockpit("sweep", "join", name, "--runs-dir", str(runs_dir), "--storage",
                _with_password(PG_URL.rsplit("/", 1)[0] + "/no_such_db", "user"))
    outputs.append(r.stdout + r.stderr)
    assert r.returncode == 2 and "cannot open storage" in r.stderr
    assert not [o for o in outputs if PW in o], outputs
    files = [p for p in runs_dir.rglob("*") if p.is_file()]
    assert len(files) > 10 and not [p for p in files if PW.encode() in p.read_bytes()]
