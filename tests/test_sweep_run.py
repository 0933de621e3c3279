"""Sweeps end to end through real worker processes: two `join` workers on one journal study never run
the same trial; a crashed trial is recorded and the sweep goes on; Ctrl+C then `resume` reruns no
finished trial; a pruned trial is stopped through its run's own Stop command; Optuna sees the runs'
validation accuracy, never their test accuracy."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time

import pytest

from cockpit.core.presets import find_preset
from cockpit.core.sweeps import TrialLauncher
from engine.store import Run, iter_runs
from engine.sweep.config import load_sweep
from engine.sweep.runner import Runner
from engine.sweep.study import Study, open_storage
from engine.sweep.table import final_acc, final_val_acc, sweep_table

from .conftest import ROOT, cockpit
from .sweep_util import write_sweep

pytestmark = pytest.mark.slow


def _trials(runs_dir, name, storage=""):
    return Study.load(name, open_storage(storage or None, runs_dir, name)).study.get_trials()


def _join(runs_dir, name, storage=""):
    args = [sys.executable, "-m", "cockpit.cli", "sweep", "join", name, "--runs-dir", str(runs_dir)]
    args += ["--storage", storage] if storage else []
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env=dict(os.environ, COLUMNS="120", NO_COLOR="1"))


def two_workers_share_one_study(tmp_path, runs_dir, storage: str = "", name: str = "pair") -> None:
    """Create a study, run two `join` processes on it at once; every trial runs exactly once."""
    path = write_sweep(tmp_path, name, {"a": 0.1, "b": 0.2}, [0, 1], val=64)
    extra = ["--storage", storage] if storage else []
    r = cockpit("sweep", "create", str(path), "--runs-dir", str(runs_dir), *extra)
    assert r.returncode == 0, r.stderr
    workers = [_join(runs_dir, name, storage) for _ in range(2)]
    outs = [w.communicate(timeout=240)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    trials = _trials(runs_dir, name, storage)
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 4
    run_ids = [t.user_attrs["run_id"] for t in trials]
    assert len(set(run_ids)) == 4  # four trials, four different runs
    runs = [Run(runs_dir / i) for i in run_ids]
    keys = sorted((r.meta()["sweep_config"], r.meta()["sweep_seed"]) for r in runs)
    assert keys == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]  # each configuration and seed exactly once
    assert len(list(iter_runs(runs_dir))) == 4
    started = [line for out in outs for line in out.splitlines() if " -> " in line]
    assert len(started) == 4, outs  # the two workers together started four trials, none twice
    # the table is the runs' own numbers
    table = sweep_table(runs_dir, name)
    for row in table.configs:
        accs = [final_acc(r) for r in runs if r.meta()["sweep_config"] == row.config]
        assert abs(row.mean - sum(accs) / 2) < 1e-12 and row.best_acc == max(accs)
    for t in trials:  # Optuna's value is the validation accuracy; the test accuracy is only kept beside it
        run = Run(runs_dir / t.user_attrs["run_id"])
        assert t.value == final_val_acc(run) is not None and t.user_attrs["test_acc"] == final_acc(run)


def test_two_join_workers_on_one_journal_study_never_run_the_same_trial(tmp_path, runs_dir):
    two_workers_share_one_study(tmp_path, runs_dir)
    assert (runs_dir / "sweeps" / "pair" / "journal.log").is_file()


class KillingLauncher(TrialLauncher):
    """Starts trials as usual, but SIGKILLs the worker of configuration `boom` once it runs."""

    def spawn(self, run, env, claim=None):
        proc = super().spawn(run, env, claim)
        if ".boom." in run.run_id:
            deadline = time.monotonic() + 60
            while run.state() != "running" and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        return proc


def test_a_crashed_trial_is_recorded_crashed_and_the_sweep_goes_on(tmp_path, runs_dir):
    path = write_sweep(tmp_path, "crashy", {"boom": 0.1, "ok": 0.1}, [0])
    sweep, presets = load_sweep(path, find_preset)
    storage = open_storage(None, runs_dir, "crashy")
    study = Study.create(sweep, presets, storage)
    said: list[str] = []
    Runner(study, KillingLauncher(runs_dir), [], say=said.append, poll=0.2).run()
    trials = {t.user_attrs["config"]: t for t in study.study.get_trials()}
    assert trials["boom"].state.name == "FAIL" and trials["boom"].user_attrs["outcome"] == "crashed"
    assert trials["ok"].state.name == "COMPLETE"
    # no validation split (fixed configurations, no pruning): complete with no value, never the test accuracy
    ok = Run(runs_dir / trials["ok"].user_attrs["run_id"])
    assert trials["ok"].value is None and trials["ok"].intermediate_values == {}
    assert trials["ok"].user_attrs["test_acc"] == final_acc(ok) is not None
    boom = Run(runs_dir / trials["boom"].user_attrs["run_id"])
    assert boom.state() == "crashed"
    table = sweep_table(runs_dir, "crashy", sweep)
    assert {r.config: r.states for r in table.configs} == {"boom": {"crashed": 1}, "ok": {"finished": 1}}


def _wait_for(pred, timeout=240.0):  # generous: 2 shared cores can be very busy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def _finished_runs(runs_dir):
    return [r for r in iter_runs(runs_dir, readonly=True) if r.state() == "finished"]


def test_ctrl_c_stops_the_sweep_and_resume_reruns_no_finished_trial(tmp_path, runs_dir):
    # long enough that an idle machine cannot finish the second trial between two looks
    path = write_sweep(tmp_path, "halt", {"a": 0.1, "b": 0.2}, [0], epochs=30)
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "sweep", str(path), "--runs-dir", str(runs_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env=dict(os.environ, COLUMNS="120", NO_COLOR="1"),
                            # a shell without job control starts background jobs with SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # interrupted while the second trial trains (past its first step: its run has metrics to continue)
    assert _wait_for(lambda: len(_finished_runs(runs_dir)) == 1 and any(
        r.state() == "running" and r.last_step() > 0 for r in iter_runs(runs_dir, readonly=True)))
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "cockpit sweep resume halt" in out
    first = {r.run_id: r.meta()["ended"] for r in _finished_runs(runs_dir)}
    assert all(r.state() != "running" for r in iter_runs(runs_dir))  # no worker left behind
    r = cockpit("sweep", "resume", "halt", "--runs-dir", str(runs_dir), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = list(iter_runs(runs_dir))
    keys = sorted((x.meta()["sweep_config"], x.meta()["sweep_seed"]) for x in runs)
    assert keys == [("a", 0), ("b", 0)]  # the interrupted trial continued its own run
    for run_id, ended in first.items():  # the finished ones were not run again
        assert Run(runs_dir / run_id).meta()["ended"] == ended
    assert all(x.state() == "finished" for x in runs)
    states = sorted(t.state.name for t in _trials(runs_dir, "halt"))
    assert states.count("COMPLETE") == 2 and states.count("FAIL") == 1  # the interrupted attempt, queued again


def test_a_pruned_trial_is_stopped_through_its_runs_stop_command(tmp_path, runs_dir):
    extra = 'pruner = "median"\npruner_startup_trials = 1\npruner_warmup_epochs = 0'
    path = write_sweep(tmp_path, "prune", {"good": 0.1, "bad": 1e-6}, [0], epochs=3, extra=extra, val=64)
    # the bad trial alone runs long (minutes if never stopped), so the Stop always lands before its end
    text = path.read_text(encoding="utf-8").replace('"optim.lr" = 1e-06 }', '"optim.lr" = 1e-06, "train.epochs" = 400 }')
    assert '"train.epochs" = 400' in text
    path.write_text(text, encoding="utf-8")
    r = cockpit("sweep", str(path), "--runs-dir", str(runs_dir), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    trials = {t.user_attrs["config"]: t for t in _trials(runs_dir, "prune")}
    assert trials["good"].state.name == "COMPLETE" and trials["bad"].state.name == "PRUNED"
    bad = Run(runs_dir / trials["bad"].user_attrs["run_id"])
    assert bad.state() == "stopped" and bad.meta()["sweep_outcome"] == "pruned"
    stop = bad.con.execute("SELECT kind, source, status FROM commands").fetchall()
    assert [tuple(s) for s in stop] == [("stop", "sweep", "done")]
    assert bad.con.execute("SELECT MAX(epoch) FROM metrics").fetchone()[0] < 400  # stopped before its end
    for t in trials.values():  # what the pruner compared: each epoch's validation accuracy, as the run stored it
        val = _val_by_epoch(Run(runs_dir / t.user_attrs["run_id"]))
        assert val and t.intermediate_values == val


def _val_by_epoch(run: Run) -> dict[int, float]:
    out: dict[int, float] = {}
    for epoch, value in run.con.execute("SELECT epoch, value FROM metrics WHERE name = 'val_acc' ORDER BY id"):
        out.setdefault(int(round(epoch)), value)
    return out


def test_ensembles_are_evaluated_at_the_end_and_their_gains_tabled(tmp_path, runs_dir):
    extra = ('[[ensemble]]\nname = "a+b"\nmembers = ["a", "b"]\nguide_gain = 0.012\n\n'
             '[[ensemble]]\nname = "a_inits"\nmembers = ["a"]\nacross_seeds = true\n')
    path = write_sweep(tmp_path, "ens", {"a": 0.1, "b": 0.2}, [0, 1])
    path.write_text(path.read_text() + "\n" + extra)
    r = cockpit("sweep", str(path), "--runs-dir", str(runs_dir), timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = {(x.meta()["sweep_config"], x.meta()["sweep_seed"]): x for x in iter_runs(runs_dir)}
    stored = {}
    for (config, seed), run in runs.items():
        for res in run.results("ensemble"):
            stored[tuple(m.run for m in res.data.members)] = res.data
    pair = [stored[(runs[("a", s)].run_id, runs[("b", s)].run_id)] for s in (0, 1)]
    inits = stored[(runs[("a", 0)].run_id, runs[("a", 1)].run_id)]
    assert len(stored) == 3
    by_id = {x.run_id: x for x in runs.values()}
    for result in stored.values():  # the members are the models the configuration rows report
        assert result.checkpoints == ["last.pt"] * len(result.members)
        for m in result.members:
            assert abs(m.acc - final_acc(by_id[m.run])) < 1e-6
    table = sweep_table(runs_dir, "ens")
    row, across = table.ensembles
    assert row.n == 2 and abs(row.mean - sum(p.mean_prob_acc for p in pair) / 2) < 1e-12
    assert abs(row.std - statistics.stdev([p.mean_prob_acc for p in pair])) < 1e-12
    assert abs(row.gain - sum(p.gain for p in pair) / 2) < 1e-12 and row.guide_gain == 0.012
    assert abs(row.mode_vote - sum(p.mode_vote_acc for p in pair) / 2) < 1e-12
    assert abs(row.mode_vote_gain - sum(p.mode_vote_gain for p in pair) / 2) < 1e-12
    assert across.n == 1 and across.size == 2 and across.mean == inits.mean_prob_acc
    assert across.mode_vote == inits.mode_vote_acc and across.std is None
    from cockpit.report.sweep import ensemble_cells

    pair_cells, across_cells = ensemble_cells(table)
    assert pair_cells[2] == "each of 2 seeds" and pair_cells[-2:] == [
        f"{100 * row.mode_vote_gain:+.2f}", "+1.20"]  # the guide's vote gain beside the guide's claim
    assert across_cells[2] == "all 2 seeds at once" and "seed)" not in " ".join(across_cells)
    assert "a+b" in r.stdout and "+1.20" in r.stdout and "torch.mode" in r.stdout


def test_a_search_samples_its_budget_and_runs_each_configuration_once_per_seed(tmp_path, runs_dir):
    path = tmp_path / "srch.toml"
    head = write_sweep(tmp_path, "srch", {"x": 0.1}, [0, 1], val=64).read_text().split("[[variant]]")[0]
    path.write_text(head + 'pruner = "none"\n[search]\ntrials = 2\n[search.space."optim.lr"]\nlow = 0.01\n'
                    'high = 0.5\nlog = true\n', encoding="utf-8")
    sweep, presets = load_sweep(path, find_preset)
    study = Study.create(sweep, presets, open_storage(None, runs_dir, "srch"))
    assert study.counts() == {}  # nothing queued up front: a search samples as it goes
    Runner(study, TrialLauncher(runs_dir), [], say=lambda m: None, poll=0.2).run()
    trials = study.study.get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 4 and study.sampled() == 2
    by_config: dict[str, list] = {}
    for t in trials:
        by_config.setdefault(t.user_attrs["config"], []).append(t)
    assert len(by_config) == 2
    for config, ts in by_config.items():  # each sampled configuration: both seeds, the same parameters
        assert sorted(t.user_attrs["seed"] for t in ts) == [0, 1]
        assert len({t.params["optim.lr"] for t in ts}) == 1
        runs = [Run(runs_dir / t.user_attrs["run_id"]) for t in ts]
        assert {r.spec().optim.lr for r in runs} == {ts[0].params["optim.lr"]}
        assert {r.spec().train.seed for r in runs} == {0, 1}
        # what TPE optimizes: each run's final validation accuracy (the table keeps its test accuracy)
        assert [t.value for t in ts] == [final_val_acc(r) for r in runs] and None not in [t.value for t in ts]
        assert [t.user_attrs["test_acc"] for t in ts] == [final_acc(r) for r in runs]


def _run_of(runs_dir, config, seed):
    found = [r for r in iter_runs(runs_dir, readonly=True)
             if (r.meta().get("sweep_config"), r.meta().get("sweep_seed")) == (config, seed)]
    return found[0] if len(found) == 1 else None


def test_resume_after_the_sweep_process_died_adopts_a_live_run_and_records_a_finished_one(tmp_path, runs_dir):
    from engine.contracts import Continue, Pause
    from engine.sweep.ledger import entries

    # long enough (about 10 s on an idle box) that the test sees each seed-0 trial training and pauses it
    path = write_sweep(tmp_path, "orphans", {"a": 0.1, "b": 0.2}, [0, 1], epochs=100)
    proc = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "sweep", str(path), "--parallel", "2",
                             "--runs-dir", str(runs_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, env=dict(os.environ, COLUMNS="120", NO_COLOR="1"))
    # both seed-0 trials training: paused (through their runs' own commands) so that neither ends on its
    # own before the test says so, however busy the machine
    assert _wait_for(lambda: all(x is not None and x.state() == "running" and x.last_step() > 0
                                 for x in (_run_of(runs_dir, "a", 0), _run_of(runs_dir, "b", 0))))
    a0, b0 = Run(runs_dir / _run_of(runs_dir, "a", 0).run_id), Run(runs_dir / _run_of(runs_dir, "b", 0).run_id)
    for run in (a0, b0):
        run.send_command(Pause(), source="test")
    assert _wait_for(lambda: a0.state() == b0.state() == "paused")
    proc.kill()  # kill -9: its trials' workers run on in their own sessions
    proc.communicate(timeout=60)
    a0.send_command(Continue(), source="test")  # a0 finishes while no sweep watches it
    assert _wait_for(lambda: a0.state() == "finished") and b0.state() == "paused"
    pids = {run.run_id: run.meta()["pid"] for run in (a0, b0)}
    resume = subprocess.Popen([sys.executable, "-m", "cockpit.cli", "sweep", "resume", "orphans", "--parallel", "2",
                               "--runs-dir", str(runs_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=ROOT, env=dict(os.environ, COLUMNS="200", NO_COLOR="1"))
    # b0 is adopted (its trial's run noted again in the ledger), and only then let go on
    assert _wait_for(lambda: [e.run_id for e in entries(runs_dir / "sweeps" / "orphans")].count(b0.run_id) == 2)
    assert b0.state() == "paused"
    b0.send_command(Continue(), source="test")
    out = resume.communicate(timeout=400)[0]
    assert resume.returncode == 0, out
    assert "2 interrupted trial(s) queued again" in out
    assert f"{b0.run_id} (its worker still runs: adopted)" in out, out
    assert f"{a0.run_id} (it ended while no sweep watched it: recorded from its run, not run again)" in out, out
    runs = list(iter_runs(runs_dir))
    keys = sorted((x.meta()["sweep_config"], x.meta()["sweep_seed"]) for x in runs)
    assert keys == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]  # every seed once: no second run
    assert all(x.state() == "finished" for x in runs)
    for run in (a0, b0):  # one worker each, never restarted, no step written twice
        assert run.meta()["pid"] == pids[run.run_id] and not run.meta().get("resume")
        assert not run.con.execute("SELECT name, step FROM metrics GROUP BY name, step HAVING COUNT(*) > 1").fetchall()
    trials = _trials(runs_dir, "orphans")
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted((t.user_attrs["config"], t.user_attrs["seed"]) for t in done) == keys
    for t in done:  # each trial recorded from its own run's numbers
        assert t.user_attrs["test_acc"] == final_acc(Run(runs_dir / t.user_attrs["run_id"]))
    table = sweep_table(runs_dir, "orphans")
    for row in table.configs:
        accs = [final_acc(x) for x in runs if x.meta()["sweep_config"] == row.config]
        assert row.n == 2 and abs(row.mean - sum(accs) / 2) < 1e-12 and row.states == {"finished": 2}
