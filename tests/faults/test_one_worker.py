"""One worker per run: every path that starts a worker on an existing run takes the run's claim (an
OS lock its worker holds for life), so two at once never both train it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.store import ClaimHeld, Run, RunClaim, pid_alive

from ..conftest import ROOT, TINY_SETS
from .test_crashes import start_detached, steps, wait_for

LONG = [*TINY_SETS, "train.epochs=500", "train.checkpoint_every=1"]


def workers_of(run: Run) -> list[int]:
    """The pids of live `engine.worker` processes training this run dir (zombies excluded)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"engine.worker" in argv and str(run.path).encode() in argv and state != "Z":
            pids.append(int(entry.name))
    return pids


def resume_cli(run: Run) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.Popen([sys.executable, "-m", "cockpit.cli", "resume", run.run_id, "--detach"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_9(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(pid_alive(p) for p in pids), 20, "the worker to die")


@pytest.mark.slow
def test_two_resumes_at_once_start_exactly_one_worker_20_times(runs_dir):
    run = start_detached(runs_dir, LONG)
    wait_for(lambda: (run.checkpoints / "last.pt").exists() and steps(run), what="a checkpoint")
    kill_9(workers_of(run))
    for attempt in range(20):
        first, second = resume_cli(run), resume_cli(run)
        outs = [p.communicate(timeout=120) for p in (first, second)]
        codes = sorted(p.returncode for p in (first, second))
        assert codes == [0, 2], (attempt, outs)
        refused = next(err for (_, err), p in zip(outs, (first, second)) if p.returncode == 2)
        assert "already has" in refused and "pid" in refused, refused
        live = wait_for(lambda: workers_of(run), 30, "the resumed worker")
        assert len(live) == 1, (attempt, live)
        if attempt % 10 == 9:  # now and then, let it train before it dies
            before = len(steps(run))
            wait_for(lambda: len(steps(run)) > before + 2 and len(workers_of(run)) == 1, 60, "training")
        assert len(workers_of(run)) == 1, attempt
        kill_9(live)
    pairs = run.con.execute("SELECT name, step, COUNT(*) FROM metrics GROUP BY name, step HAVING COUNT(*) > 1").fetchall()
    assert not pairs, f"(metric, step) pairs written twice: {[tuple(p) for p in pairs[:5]]}"


def test_a_claim_is_exclusive_and_dies_with_its_holder(tmp_path):
    """The claim is the kernel's: a second taker is refused naming the holder; a killed holder
    (kill -9) leaves nothing to clean up."""
    claim = RunClaim.take(tmp_path)
    with pytest.raises(ClaimHeld, match=f"pid {os.getpid()}"):
        RunClaim.take(tmp_path)
    claim.release()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from engine.store import RunClaim; "
                               f"RunClaim.take({str(tmp_path)!r}).record(__import__('os').getpid()); "
                               "print('held', flush=True); time.sleep(60)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ClaimHeld, match=f"live worker \\(pid {holder.pid}\\)"):
        RunClaim.take(tmp_path)
    holder.kill()
    holder.wait()
    RunClaim.take(tmp_path).release()


def test_a_worker_started_by_hand_on_a_claimed_run_refuses_and_writes_nothing(tmp_path):
    from engine.spec import load_spec

    run = Run.create(tmp_path, load_spec(None, TINY_SETS))
    before = run.meta()
    claim = RunClaim.take(run.path)
    try:
        res = subprocess.run([sys.executable, "-P", "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    finally:
        claim.release()
    assert res.returncode == 2 and "already has" in res.stderr, res.stderr
    assert run.meta() == before
