"""How `--parallel N` splits a machine, and what a sweep prints of its storage."""

from __future__ import annotations

import pytest

from cockpit.core.sweeps import plan_slots, visible_gpus
from engine.sweep.secrets import redact

from .conftest import cockpit
from .sweep_util import write_sweep


def test_one_gpu_per_trial_round_robin_else_the_cores_split():
    slots = plan_slots(3, gpus=["0", "1"])
    assert [s.env for s in slots] == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"},
                                      {"CUDA_VISIBLE_DEVICES": "0"}]
    assert all(s.overrides == () for s in slots)
    assert [s.overrides for s in plan_slots(2, gpus=[], cpus=2)] == [("train.threads=1",)] * 2
    assert [s.overrides for s in plan_slots(3, gpus=[], cpus=16)] == [("train.threads=5",)] * 3
    assert plan_slots(1, gpus=[], cpus=2)[0].overrides == ()  # one trial keeps the preset's threads


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


PW = "Kq7vTz9Pw"  # distinctive: grepped for in every output


def test_every_form_of_a_storage_url_is_redacted():
    forms = {
        f"postgresql+psycopg://me:{PW}@db:5432/sweeps": "postgresql+psycopg://me:***@db:5432/sweeps",
        f"postgresql+psycopg://:{PW}@db/sweeps": "postgresql+psycopg://:***@db/sweeps",  # no user name
        f"postgresql+psycopg://me@db/sweeps?password={PW}&sslmode=require":
            "postgresql+psycopg://me@db/sweeps?password=***&sslmode=require",
        f"postgresql+psycopg:///sweeps?host=/tmp&PassWord={PW}": "postgresql+psycopg:///sweeps?host=/tmp&PassWord=***",
        f"postgresql+psycopg://me:{PW}@ss@db/sweeps": "postgresql+psycopg://me:***@db/sweeps",  # an unescaped @
        f"mysql+pymysql://me@db/sweeps;sslpassword={PW}": "mysql+pymysql://me@db/sweeps;sslpassword=***",
        "runs/sweeps/x/journal.log": "runs/sweeps/x/journal.log",
        "postgresql://db/sweeps": "postgresql://db/sweeps",
    }
    for url, shown in forms.items():
        assert redact(url) == shown
        assert redact(f"cannot open storage '{url}': refused") == f"cannot open storage '{shown}': refused"
    # a driver's message that quotes the password on its own, as typed or percent-decoded
    url = "postgresql+psycopg://me:p%40ss%2Fw0rd@db/sweeps"
    assert redact("auth failed for p@ss/w0rd (p%40ss%2Fw0rd)", url) == "auth failed for *** (***)"


@pytest.mark.slow
def test_a_storage_password_is_never_printed_by_a_failing_open_or_the_resume_hint(runs_dir, monkeypatch):
    from cockpit.cli.sweep import resume_hint

    pytest.importorskip("psycopg")
    # port 1: nothing listens there, so opening the storage fails at once with the driver's message
    urls = (f"postgresql+psycopg://me:{PW}@127.0.0.1:1/db", f"postgresql+psycopg://:{PW}@127.0.0.1:1/db",
            f"postgresql+psycopg://me@127.0.0.1:1/db?password={PW}")
    path = write_sweep(runs_dir.parent, "x", {"a": 0.1}, [0])
    for url, command in zip(urls * 2, [("join", "x"), ("resume", "x"), ("status", "x"), ("create", str(path)),
                                       ("run", str(path)), ("status", "x", "--json")]):
        r = cockpit("sweep", *command, "--storage", url)
        out = r.stdout + r.stderr
        assert r.returncode == 2 and "cannot open storage postgresql+psycopg://" in out, (command, out)
        assert PW not in out and "Traceback" not in out and len(r.stderr.strip().splitlines()) == 1, out
    r = cockpit("sweep", "status", "x", env={"COCKPIT_SWEEP_STORAGE": urls[1]})
    assert r.returncode == 2 and "cannot open storage" in r.stderr and PW not in r.stdout + r.stderr
    hint = resume_hint("x", f"postgresql+psycopg://:{PW}@db/s")
    assert PW not in hint and hint.startswith("cockpit sweep resume x --storage postgresql+psycopg://:***@db/s")
    monkeypatch.setenv("COCKPIT_SWEEP_STORAGE", f"postgresql+psycopg://me:{PW}@db/s")
    assert resume_hint("x", f"postgresql+psycopg://me:{PW}@db/s") == "cockpit sweep resume x"
    assert not runs_dir.exists()  # nothing written


def test_running_a_sweep_that_exists_says_resume_or_join(runs_dir, tmp_path):
    path = write_sweep(tmp_path, "twice", {"a": 0.1}, [0])
    r = cockpit("sweep", "create", str(path))
    assert r.returncode == 0 and "1 trial(s) queued" in r.stdout, r.stderr
    r = cockpit("sweep", str(path))
    assert r.returncode == 2 and "cockpit sweep resume twice" in r.stderr
    assert not [p for p in runs_dir.iterdir() if p.name != "sweeps"]  # no run was made


def test_an_unknown_sweep_exits_2_and_writes_nothing(runs_dir):
    for command in ("status", "join", "resume", "report"):
        r = cockpit("sweep", command, "nope")
        assert r.returncode == 2 and "no sweep 'nope'" in r.stderr, (command, r.stderr)
    assert not runs_dir.exists()
