"""`cockpit run` and `attach` as a script, nohup or CI sees them (stdout not a terminal), Ctrl+C in
`attach`, and a GPU-sized run on a CPU, through the real CLI and worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from rich.console import Console

from cockpit.cli.live import render
from cockpit.core.tail import RunTail
from engine.contracts import SlowOnCPU
from engine.store import Run, resolve_run

from .conftest import ROOT, TINY_SETS, cockpit


def sets(*extra: str) -> list[str]:
    return [a for s in [*TINY_SETS, *extra] for a in ("--set", s)]


def popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cockpit.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, NO_COLOR="1"))


def finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """The rest of a process's stdout, and its stderr, read through the same buffered streams that
    readline() used: communicate() reads the pipes directly and drops what readline() read ahead."""
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    out = proc.stdout.read()
    proc.wait(timeout=timeout)
    reader.join(timeout)
    return out, "".join(err)


def slow_events(run: Run) -> list:
    return run.con.execute("SELECT level, message, data FROM events WHERE kind = ?", (SlowOnCPU.KIND,)).fetchall()


@pytest.mark.slow
def test_a_piped_run_prints_each_phase_and_evaluation_as_it_happens(runs_dir):
    proc = popen("run", *sets("train.epochs=6"))
    seen: list[str] = []
    while line := proc.stdout.readline():
        seen.append(line.rstrip("\n"))
        if "evaluation at step 4:" in line:
            assert proc.poll() is None, "the first evaluation is printed while the run trains on"
            break
    out = finish(proc, 180)[0]
    assert proc.returncode == 0, out
    lines = [*seen, *out.splitlines()]
    assert any(x.endswith("phase: importing torch") for x in lines) and any(" started: " in x for x in lines)
    evals = [x for x in lines if " evaluation at step " in x]
    assert len(evals) == 6, evals  # one per epoch, each once
    assert "test accuracy" in evals[0] and "test_acc" not in "\n".join(lines), "labels, never raw metric names"
    ends = [i for i, x in enumerate(lines) if " finished: " in x]
    assert ends and ends[0] > lines.index(evals[-1]), "the end comes after its last evaluation"
    run = resolve_run("last", runs_dir)
    assert not slow_events(run), "a run that ends within the hour is not called GPU-sized"


@pytest.mark.slow
def test_a_gpu_sized_run_on_a_cpu_says_so_once_and_attach_detaches_on_ctrl_c(runs_dir):
    res = cockpit("run", "--detach", *sets("train.epochs=10000", "data.synthetic_train=25600"))  # 4M steps: hours on any CPU
    assert res.returncode == 0, res.stderr
    run = resolve_run("last", runs_dir)
    deadline = time.monotonic() + 120
    while not slow_events(run) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        [(level, message, data)] = slow_events(run)
        assert level == "warning" and "`cockpit run cpu_cifar10` is the CPU recipe" in message
        said = SlowOnCPU.model_validate(json.loads(data))
        assert said.eta_s > SlowOnCPU.LIMIT_S and said.images_per_s > 0 and said.message() == message
        time.sleep(1.0)
        assert len(slow_events(run)) == 1, "said once, not at every window"
        assert sum(message in line for line in run.log_path.read_text().splitlines()) == 1, "in worker.log"
        tail = RunTail(run)
        tail.poll()
        console = Console(width=300, record=True, color_system=None)  # the message on one line
        console.print(render(tail, 300))
        assert f"! {message}" in console.export_text(), "the live view says it above the traces"

        attach = popen("attach", run.run_id)
        first = [attach.stdout.readline(), attach.stdout.readline()]  # where it stands, then the notice
        attach.send_signal(signal.SIGINT)
        out, err = finish(attach, 60)
        assert attach.returncode == 0, err
        assert "slow_on_cpu: " + message in first[1] and "Traceback" not in err
        assert f"detached; {run.run_id} is still running (cockpit attach {run.run_id})" in out
        assert "┃ metric" not in out, "no final table for a run that is still going"
        assert run.state() == "running", "Ctrl+C in attach leaves the run alone"
    finally:
        cockpit("stop", run.run_id)
        deadline = time.monotonic() + 60
        while run.state() in ("created", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
