"""The results table, recomputed by hand from run stores written with known numbers."""

from __future__ import annotations

import re
import statistics
import xml.etree.ElementTree as ET

from engine.spec import RunSpec
from engine.store import Run
from engine.sweep.config import SweepFile
from engine.sweep.table import sweep_table
from cockpit.report.sweep import cells, render_sweep_html, render_sweep_json, render_sweep_md


def _trial(runs_dir, config: str, seed: int, accs: list[float], state="finished", outcome="", ips=1000.0) -> Run:
    run = Run.create(runs_dir, RunSpec(name=f"s.{config}.s{seed}"))
    created = run.meta()["created"]
    run.add_metrics([(10 * (i + 1), float(i + 1), "test_acc", a) for i, a in enumerate(accs)])
    run.add_metrics([(5, 0.5, "images_per_s", ips), (15, 1.5, "images_per_s", ips * 3)])
    # walls: the n-th evaluation 10 s after the run was created
    run.con.execute("UPDATE metrics SET wall = ? + 10 * epoch WHERE name = 'test_acc'", (created,))
    run.set_meta(state=state, sweep="s", sweep_config=config, sweep_seed=seed, sweep_outcome=outcome)
    run.close()
    return run


def test_table_is_mean_std_best_seed_convergence_and_states(tmp_path):
    runs = tmp_path / "runs"
    _trial(runs, "sgd", 0, [0.5, 0.8, 0.90])
    _trial(runs, "sgd", 1, [0.6, 0.85, 0.94])
    _trial(runs, "sgd", 2, [0.4, 0.7, 0.80])
    _trial(runs, "adamw", 0, [0.7, 0.88, 0.89], ips=2000.0)
    _trial(runs, "adamw", 1, [0.1], state="stopped", outcome="pruned")
    _trial(runs, "adamw", 2, [0.2], state="crashed")
    _trial(runs, "other-sweep", 0, [0.99]).set_meta(sweep="t")
    sweep = SweepFile(name="s", seeds=[0, 1, 2], target=0.85, variant=[
        {"name": "sgd", "guide": 0.942}, {"name": "adamw", "guide": 0.935}])
    table = sweep_table(runs, "s", sweep)
    sgd, adamw = table.configs
    assert [r.config for r in table.configs] == ["sgd", "adamw"]  # the sweep file's order
    assert sgd.n == 3 and abs(sgd.mean - statistics.fmean([0.9, 0.94, 0.8])) < 1e-12
    assert abs(sgd.std - statistics.stdev([0.9, 0.94, 0.8])) < 1e-12
    assert (sgd.best_seed, sgd.best_acc, sgd.guide) == (1, 0.94, 0.942)
    # target 0.85: seed 0 at epoch 3, seed 1 at epoch 2, seed 2 never
    assert sgd.reached == 2 and sgd.epochs_to_target == 2.5 and abs(sgd.time_to_target - 25.0) < 0.01
    assert sgd.images_per_s == 2000.0 and sgd.states == {"finished": 3}
    assert adamw.n == 1 and adamw.mean == 0.89 and adamw.std is None and adamw.reached == 1
    assert adamw.states == {"finished": 1, "pruned": 1, "crashed": 1}
    assert table.states == {"finished": 4, "pruned": 1, "crashed": 1}
    headers, rows = cells(table)
    assert rows[0][:4] == ["sgd", "88.00 ± 7.21%", "94.2%", "s1 94.00%"] and rows[1][1] == "89.00% (1 seed)"
    assert "88.00 ± 7.21%" in render_sweep_md(table) and "88.00 ± 7.21%" in render_sweep_html(table)
    assert '"mean": 0.88' in render_sweep_json(table)
    chart = re.search(r"<svg.*?</svg>", render_sweep_html(table), re.S).group(0)
    ET.fromstring(chart)  # the curves chart is well-formed SVG
    assert "sgd ± 1 std" in chart
    html = render_sweep_html(table, {"optim.lr": 0.7, "model.width": 0.3})
    assert 'id="sweep-importance"' in html and "optim.lr" in html


def test_cockpit_report_on_a_sweeps_name_reports_the_sweep(runs_dir):
    from engine.atomic_write import write_text_atomic
    from engine.sweep.config import sweep_json

    from .conftest import cockpit

    _trial(runs_dir, "sgd", 0, [0.5, 0.8, 0.90])
    _trial(runs_dir, "sgd", 1, [0.6, 0.85, 0.94])
    sweep = SweepFile(name="s", seeds=[0, 1], target=0.85, variant=[{"name": "sgd", "guide": 0.942}])
    (runs_dir / "sweeps" / "s").mkdir(parents=True)
    write_text_atomic(runs_dir / "sweeps" / "s" / "sweep.json", sweep_json(sweep, {}))
    r = cockpit("report", "s", "--width", "160")
    assert r.returncode == 0 and "92.00 ± 2.83%" in r.stdout, r.stdout + r.stderr
    r = cockpit("report", "s", "--format", "md")
    assert r.returncode == 0 and (runs_dir / "sweeps" / "s" / "report.md").is_file(), r.stderr
    assert not (runs_dir / "sweeps" / "s" / "journal.log").exists()  # reading never makes a study


def test_an_swa_trial_is_ranked_and_reported_by_its_swa_model(tmp_path):
    """Optuna's value for an SWA trial is the averaged model's validation accuracy, as its test figure is
    the averaged model's: never the model it averaged from."""
    from engine.sweep.table import final_acc, final_checkpoint, final_val_acc

    run = Run.create(tmp_path / "runs", RunSpec(name="swa"))
    run.add_metrics([(10, 1.0, "val_acc", 0.60), (10, 1.0, "test_acc", 0.61),
                     (20, 2.0, "val_acc", 0.70), (20, 2.0, "test_acc", 0.71)])
    assert (final_val_acc(run), final_acc(run), final_checkpoint(run)) == (0.70, 0.71, "last")
    run.add_metrics([(20, 2.0, "swa_val_acc", 0.74), (20, 2.0, "swa_test_acc", 0.75)])
    assert (final_val_acc(run), final_acc(run)) == (0.74, 0.75)
    assert final_checkpoint(run) == "swa"  # the sweep's ensembles take the model its row reports
    run.close()


def test_each_configuration_and_seed_is_counted_once_and_a_deleted_run_dir_is_named(tmp_path):
    import shutil

    from engine.sweep.ledger import Entry, record

    runs = tmp_path / "runs"
    first = _trial(runs, "sgd", 0, [0.5, 0.90])
    _trial(runs, "sgd", 0, [0.5, 0.70])  # the same seed run again (a resume that restarted a finished trial)
    gone = _trial(runs, "sgd", 1, [0.6, 0.80])
    crashed = _trial(runs, "adamw", 0, [0.3], state="crashed")
    _trial(runs, "adamw", 0, [0.4, 0.6])  # the seed's later run, after a crash with no checkpoint
    folder = runs / "sweeps" / "s"
    for i, (run, config, seed) in enumerate([(first, "sgd", 0), (gone, "sgd", 1), (crashed, "adamw", 0)]):
        record(folder, Entry(i, config, seed, run.run_id))
    with open(folder / "trials.jsonl", "a") as f:
        f.write('{"trial": 9, "conf')  # a torn line is skipped
    shutil.rmtree(runs / gone.run_id)
    sweep = SweepFile(name="s", seeds=[0, 1], target=0.85, variant=[{"name": "sgd"}, {"name": "adamw"}])
    table = sweep_table(runs, "s", sweep)
    sgd, adamw = table.configs
    assert sgd.n == 1 and sgd.mean == 0.90 and sgd.std is None  # seed 0 once (its first finished run), seed 1 gone
    assert sgd.states == {"finished": 1, "duplicate": 1, "run dir missing": 1}
    assert adamw.n == 1 and adamw.mean == 0.6 and adamw.states == {"finished": 1, "superseded": 1}
    missing = [t for t in table.trials if t.state == "run dir missing"]
    assert [(t.run_id, t.config, t.seed, t.acc) for t in missing] == [(gone.run_id, "sgd", 1, None)]
    headers, rows = cells(table)
    assert "run dir missing" in rows[0][-1] and "run dir missing" in render_sweep_md(table)


def test_a_trial_whose_worker_is_silent_is_tabled_not_responding(tmp_path, monkeypatch):
    import os
    import socket
    import time

    from engine.store import NOT_RESPONDING, process_start

    runs = tmp_path / "runs"
    _trial(runs, "sgd", 0, [0.9])
    _trial(runs, "sgd", 1, [0.5], state="running").set_meta(
        host=socket.gethostname(), pid=os.getpid(), pid_start=process_start(os.getpid()), heartbeat=time.time() - 60)
    [sgd] = sweep_table(runs, "s", SweepFile(name="s", seeds=[0, 1], variant=[{"name": "sgd"}])).configs
    assert sgd.states == {"finished": 1, NOT_RESPONDING: 1}
