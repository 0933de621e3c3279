"""Reports and listings that say which model a number is about: the last
point survives downsampling, best.pt is chosen on validation (else the last epoch) and "best acc" is
its test accuracy, every finishing row names its model and every delta its baseline."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.spec import load_spec
from engine.store import Run

from .test_report import make_run


def plain_run(runs_dir, series: dict[str, list[tuple[int, float]]]) -> Run:
    spec = load_spec(None, ["train.epochs=1"])
    run = Run.create(runs_dir, spec)
    run.set_meta(state="finished", steps_per_epoch=10, total_steps=max(s for v in series.values() for s, _ in v))
    run.add_metrics([(s, s / 10, name, v) for name, pts in series.items() for s, v in pts])
    return run


def test_downsampling_keeps_the_last_point_in_every_view(tmp_path):
    from cockpit.report import summarize
    from cockpit.report.compare import compare_summaries

    # 560 points, the last one neither a bucket's min nor its max (the run: 0.0609 shown, 0.0481 true)
    pts = [(s, 1.0 + (s % 7) / 10) for s in range(1, 561)]
    pts[-3:] = [(558, 1.6), (559, 1.0), (560, 1.25)]  # the last bucket's max, min, then the true last
    run = plain_run(tmp_path, {"train_loss": pts, "test_acc": [(560, 0.5)]})
    s = summarize(run)
    loss = s["series"]["train_loss"]
    assert len(loss["step"]) <= 500
    assert (loss["step"][0], loss["value"][0]) == pts[0] and (loss["step"][-1], loss["value"][-1]) == (560, 1.25)
    curve = compare_summaries([s, s])["curves"]["train_loss"][0]
    assert curve["y"][-1] == 1.25  # compare's and the SVG legend's "last" read the series


def test_runs_list_best_acc_is_the_test_accuracy_of_the_checkpoint_selected_on_validation(tmp_path):
    from cockpit.core.runs import scan_runs

    plain_run(tmp_path, {"val_acc": [(10, 0.5), (20, 0.7), (30, 0.6)],
                         "test_acc": [(10, 0.6), (20, 0.62), (30, 0.67)]})
    plain_run(tmp_path, {"test_acc": [(10, 0.6), (20, 0.7), (30, 0.65)]})  # no validation split
    with_val, without = scan_runs(tmp_path)
    assert with_val.best_acc == pytest.approx(0.62)  # not 0.67: that would be peeking at the test set
    assert without.best_acc == pytest.approx(0.65)  # the last evaluation


def test_the_report_says_how_best_pt_was_selected(tmp_path):
    from cockpit.report import render_markdown, summarize

    run = plain_run(tmp_path, {"test_acc": [(10, 0.6), (20, 0.7), (30, 0.65)]})
    s = summarize(run)
    assert s["metrics"]["selected"] == {"step": 30, "test_acc": 0.65, "val_acc": None, "basis": "last epoch",
                                        "says": "best.pt: step 30, the last evaluation (no validation split)"}
    assert "best.pt: step 30, the last evaluation (no validation split); its test accuracy 65.00%" in render_markdown(s)


def test_without_a_validation_split_best_pt_is_the_last_epoch_not_the_best_test_score(tmp_path):
    from engine.train import Trainer

    spec = load_spec(None, ["data.synthetic_train=64", "data.synthetic_test=32", "train.batch_size=32",
                            "train.threads=1", "train.epochs=2", "data.val_size=0"])
    tr = Trainer(spec, Run.create(tmp_path, spec), log=lambda _m: None)
    real, scores = tr.eval_model, iter([0.9, 0.5])  # the test score falls in epoch 2

    def falling(*a, **k):
        return dataclasses.replace(real(*a, **k), acc=next(scores))

    tr.eval_model = falling
    assert tr.fit() == "finished"
    best = torch.load(tr.store.checkpoints / "best.pt", map_location="cpu", weights_only=False)
    assert best["step"] == tr.step  # selecting on the test set would have kept epoch 1


def test_every_finishing_row_names_its_model_and_every_delta_its_baseline(tmp_path):
    from cockpit.report import render_markdown, summarize

    s = summarize(make_run(tmp_path))
    rows = {r["pass"]: r for r in s["finishing"]}
    assert rows["base"]["model"] == "final model · step 400"
    assert rows["base"]["ece"] is None  # calibrate.before was measured on best.pt, not on the final model
    assert rows["tta"]["model"].startswith("best.pt · step")
    for r in s["finishing"]:
        assert r["model"], r
        assert (r["delta_acc"] is None) == (r["baseline"] is None), r
    assert rows["ensemble"]["baseline"] == "the best member (run-2)"
    assert rows["ensemble"]["delta_acc"] == pytest.approx(0.9452 - 0.94)
    md = render_markdown(s)
    assert "Δ against" in md and "the best member (run-2)" in md and "final model · step 400" in md


def test_the_confusion_matrix_says_which_model_it_describes(tmp_path):
    from cockpit.report import render_html, render_markdown, summarize
    from cockpit.report.render.term import classes_part

    s = summarize(make_run(tmp_path))
    assert "Model: best.pt · step 400." in render_markdown(s)
    html = render_html(s)
    assert "Per-class accuracy (best.pt · step 400)" in html and "Confusion matrix (best.pt · step 400)" in html
    titles = [getattr(p, "title", None) for part in classes_part(s) for p in getattr(part, "renderables", [part])]
    assert any(t and "best.pt · step 400" in str(t) for t in titles)


def test_compare_deltas_name_the_baseline_run(tmp_path):
    from cockpit.report.compare import delta_text

    assert delta_text("metric:test_acc", 0.62, 0.60) == "+2.00 pp vs A"
    assert delta_text("run:step", 10, 5) == ""


def test_the_dashboard_puts_an_ensemble_against_its_best_member():
    from cockpit.core.finishing import finishing_rows
    from engine.contracts import parse_result
    from engine.store import StoredResult

    ens = parse_result("ensemble", {"members": [{"run": "a", "acc": 0.6, "nll": 1.0}, {"run": "b", "acc": 0.7, "nll": 0.9}],
                                    "vote_acc": 0.68, "mean_prob_acc": 0.72, "best_member_acc": 0.7, "gain": 0.02,
                                    "vote_gain": -0.02, "nll": 0.8})
    stored = StoredResult(id=1, wall=0.0, step=0, kind="ensemble", checkpoint="", data=ens)
    row = finishing_rows({"test_acc": 0.4}, {"ensemble": stored})[-1]
    assert row["pass"] == "ensemble" and row["delta_acc"] == pytest.approx(0.02)  # not against this run's 0.4
    assert row["baseline"] == "the best member (b)"
