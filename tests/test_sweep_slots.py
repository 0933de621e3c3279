"""How `--parallel N` splits a machine, and what a sweep prints of its storage."""

from __future__ import annotations

from cockpit.core.sweeps import plan_slots, visible_gpus
from engine.sweep.common import redact

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


def test_a_storage_password_is_never_printed():
    assert redact("postgresql+psycopg://me:s3cret@db:5432/sweeps") == "postgresql+psycopg://me:***@db:5432/sweeps"
    assert redact("runs/sweeps/x/journal.log") == "runs/sweeps/x/journal.log"


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
