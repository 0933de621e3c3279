"""One "best": every surface that shows a best test accuracy shows best.pt's (chosen on validation
accuracy), and says so; the highest test accuracy ever measured appears only as a peak that chose
nothing. The fixture's test accuracy peaks (67%) two evaluations after best.pt (62%)."""

from __future__ import annotations

import json
import re

import pytest

from engine.spec import load_spec
from engine.store import Run

from .conftest import cockpit

BEST, PEAK = "62.00%", "67.00%"
VAL = [(10, 0.5), (20, 0.7), (30, 0.6)]
TEST = [(10, 0.6), (20, 0.62), (30, 0.67)]  # the test peak is at step 30; best.pt (highest val) is step 20


def fixture_run(runs_dir, run_id: str, val=VAL, test=TEST) -> Run:
    run = Run.create(runs_dir, load_spec(None, ["train.epochs=3", f"name={run_id}"]))
    run.set_meta(state="finished", steps_per_epoch=10, total_steps=30, epochs=3, started=1.7e9, ended=1.7e9 + 60)
    run.add_metrics([(s, s / 10, "val_acc", v) for s, v in val] + [(s, s / 10, "test_acc", v) for s, v in test]
                    + [(s, s / 10, "test_loss", 2.0 - v) for s, v in test] + [(s, s / 10, "train_loss", 1.0) for s, _ in test])
    return run


def peaks_are_labelled(text: str) -> None:
    """The peak figure, where it is shown at all, sits under a 'peak' heading that says it chose nothing."""
    assert "peak" in text and "chose nothing" in text


def test_every_surface_shows_best_pt_s_test_accuracy_chosen_on_validation(runs_dir):
    run = fixture_run(runs_dir, "one")
    other = fixture_run(runs_dir, "two", val=[], test=[(10, 0.6), (20, 0.7), (30, 0.65)])  # no validation split
    rid = run.run_id

    res = cockpit("runs")
    assert res.returncode == 0, res.stderr
    line = next(ln for ln in res.stdout.splitlines() if rid in ln)
    assert BEST in line and PEAK not in res.stdout
    assert "65.00%*" in res.stdout  # the run without a validation split: its last evaluation, marked
    assert "highest validation accuracy" in " ".join(res.stdout.split())

    rows = {r["run_id"]: r for r in map(json.loads, cockpit("runs", "--json").stdout.splitlines())}
    assert rows[rid]["best_acc"] == pytest.approx(0.62)
    assert (rows[rid]["best_step"], rows[rid]["best_chosen_by"]) == (20, "val_acc")
    assert (rows[other.run_id]["best_acc"], rows[other.run_id]["best_chosen_by"]) == (pytest.approx(0.65), "last evaluation")

    res = cockpit("report", rid, "--format", "all")
    assert res.returncode == 0, res.stderr
    s = json.loads((run.path / "report.json").read_text())
    assert s["metrics"]["selected"]["test_acc"] == s["metrics"]["best"]["test_acc"]["value"] == pytest.approx(0.62)
    assert s["metrics"]["selected"]["basis"] == "val_acc" and s["metrics"]["best"]["test_acc"]["step"] == 20
    assert s["metrics"]["peak"]["test_acc"] == {"value": pytest.approx(0.67), "step": 30, "mode": "max"}
    html = (run.path / "report.html").read_text()
    tile = re.search(r'<div class="kpi"><div class="l">best test acc</div><div class="v">([^<]*)</div>'
                     r'<div class="l" style="text-transform:none">([^<]*)</div>', html)
    assert tile and tile.groups() == (BEST, "best.pt · step 20 · chosen on val acc"), tile
    peaks_are_labelled(html)
    md = (run.path / "report.md").read_text()
    assert f"best.pt: step 20, the highest validation accuracy; its test accuracy {BEST}" in md
    table = md[md.index("| metric |"):]
    assert "| test accuracy | 67.00% | 62.00% | 67.00% | 30 |" in table  # final, best.pt, peak, peak at step
    peaks_are_labelled(md)
    res = cockpit("report", rid, "--format", "term")
    assert f"best test acc {BEST} (best.pt · step 20 · chosen on val acc)" in " ".join(res.stdout.split())

    res = cockpit("compare", rid, other.run_id)
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert re.search(r"best\.pt test accuracy\s+62\.00%\s+65\.00%", out), out
    assert "never chosen on the test set" in out


async def test_the_tui_shows_best_pt_s_test_accuracy_in_the_runs_list_and_the_dashboard(runs_dir):
    from textual.widgets import DataTable

    from cockpit.tui.app import CockpitApp
    from cockpit.tui.widgets.trace_panel import TracePanel

    from .test_tui import dashboard_loaded
    from .test_tui_views import runs_list

    run = fixture_run(runs_dir, "one")
    for size, title in (((80, 24), f"Acc · best.pt test {BEST} (by val)"),  # the short form where the whole one is cut
                        ((118, 30), f"Accuracy · best.pt test {BEST} (chosen on val acc)")):  # 2 panels a row
        app = CockpitApp(runs_dir=runs_dir, run=run.run_id)
        async with app.run_test(size=size) as pilot:
            dash = await dashboard_loaded(pilot)
            panel = dash.query_one("#panel-acc", TracePanel)
            assert str(panel.border_title) == title
            assert len(title) + 6 <= panel.outer_size.width  # never cut
    app = CockpitApp(runs_dir=runs_dir, run=run.run_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await dashboard_loaded(pilot)
        screen = await runs_list(pilot, 1)
        table = screen.query_one(DataTable)
        assert str(table.get_row_at(0)[4]).strip() == BEST
        assert "best acc: best.pt by val (* no val)" in screen.sub_title


@pytest.mark.slow
def test_the_export_card_gives_best_pt_s_test_accuracy_and_what_chose_it(runs_dir):
    """The card's accuracy is best.pt's, as the run measured it at its step: 62%, never the 67% peak."""
    from engine import checkpoint as ckpt
    from engine.export import export_run
    from engine.models import build_model

    run = fixture_run(runs_dir, "one")
    spec = run.spec()
    run.set_meta(inference={"classes": [f"c{i}" for i in range(10)], "mean": [0.5] * 3, "std": [0.25] * 3,
                            "channels": 3, "height": 32, "width": 32, "channel_order": "RGB", "test_images": 100})
    net = build_model(spec.model, 10)
    ckpt.save_atomic({"model": net.state_dict(), "step": 20}, ckpt.path_for(run.checkpoints, "best"))
    card = export_run(run).card
    assert (card["checkpoint"], card["step"], card["chosen_by"]) == ("best.pt", 20, "val_acc")
    assert card["accuracy"]["test"] == pytest.approx(0.62)
    res = cockpit("export", run.run_id, timeout=300)
    assert res.returncode == 0, res.stderr
    text = " ".join(re.sub("[│┌┐└┘├┤┬┴┼─]", " ", res.stdout).split())  # a wrapped cell reads on
    assert f"test accuracy {BEST} on 100 images (as measured at step 20, best.pt chosen on validation accuracy)" in text
