"""TTA names the seed of its random views, and `--draws N` reports the mean ± sample std over N draws: one
draw's gain can be as large as the spread between draws. Every figure is recomputed from single draws."""

from __future__ import annotations

import math

import pytest

from cockpit.core.finishing import finishing_rows
from cockpit.report.render.md import render_markdown
from cockpit.report.summary import summarize
from engine.contracts import TTA, TTAResult
from engine.passes import PassError, run_pass
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

from .conftest import cockpit

TINY = ["data.synthetic_train=256", "data.synthetic_test=128", "train.batch_size=64", "train.epochs=1",
        "train.threads=1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Run:
    spec = load_spec(None, TINY)
    run = Run.create(tmp_path_factory.mktemp("tta") / "runs", spec, preset="test")
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    run.set_meta(state="finished")
    return run


def test_draws_are_the_mean_and_sample_std_of_single_draws_with_their_seeds(tiny_run):
    singles = [run_pass(tiny_run, TTA(random_views=2, seed=s)) for s in (5, 6, 7)]
    for s, r in zip((5, 6, 7), singles):
        assert r.draws == 1 and r.seed == s and r.draw_seeds == [s] and r.tta_acc_std is None
        assert r.seeds_text == f"seed {s}"
    res = run_pass(tiny_run, TTA(random_views=2, seed=5, draws=3))
    accs = [r.tta_acc for r in singles]
    mean = sum(accs) / 3
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / 2)  # sample std: n - 1
    assert res.draws == 3 and res.draw_seeds == [5, 6, 7] and res.draw_accs == accs
    assert res.tta_acc == pytest.approx(mean, abs=1e-12) and res.tta_acc_std == pytest.approx(std, abs=1e-12)
    assert res.delta == pytest.approx(mean - singles[0].base_acc, abs=1e-12)
    assert res.tta_loss == pytest.approx(sum(r.tta_loss for r in singles) / 3, abs=1e-12)
    assert res.views["random1"] == pytest.approx(sum(r.views["random1"] for r in singles) / 3, abs=1e-12)
    assert res.seeds_text == "seeds 5-7" and tiny_run.results("tta")[-1].data == res
    assert len(set(accs)) > 1 or std == 0.0  # the draws differ (on this run they do), and the std says by how much


def test_draws_without_random_views_are_refused(tiny_run):
    with pytest.raises(PassError, match="needs random views: without them every draw is the same"):
        run_pass(tiny_run, TTA(views=["identity", "flip"], random_views=0, draws=3))


def test_the_report_and_the_finishing_rows_show_the_spread_and_the_seeds(tiny_run):
    res = run_pass(tiny_run, TTA(random_views=2, seed=5, draws=3))
    row = next(r for r in finishing_rows({}, {"tta": tiny_run.results("tta")[-1]}) if r["pass"] == "tta")
    assert row["acc"] == res.tta_acc and row["acc_std"] == res.tta_acc_std
    assert row["detail"].endswith("(logits), mean ± sample std over 3 draws, seeds 5-7")
    md = render_markdown(summarize(Run(tiny_run.path, readonly=True)))
    assert f"{res.tta_acc:.2%} ± {100 * res.tta_acc_std:.2f}" in md and "seeds 5-7" in md
    old = TTAResult.model_validate({k: v for k, v in res.model_dump().items()
                                    if k not in ("draws", "draw_seeds", "draw_accs", "tta_acc_std")})
    assert old.draws == 1 and old.tta_acc_std is None  # a result stored before draws reads as one draw


async def test_the_dashboard_names_the_draws_and_shows_the_spread(tiny_run):
    from textual.app import App

    from cockpit.tui.widgets.results_table import ResultsTable

    res = run_pass(tiny_run, TTA(random_views=2, seed=5, draws=3))

    class One(App):
        def compose(self):
            yield ResultsTable(id="results")

    async with One().run_test(size=(100, 12)) as pilot:
        table = pilot.app.query_one(ResultsTable)
        table.show({"tta": tiny_run.results("tta")[-1]}, {})
        await pilot.pause()
        shown = " ".join(pilot.app.export_screenshot().replace("&#160;", " ").split())
    assert any(r["pass"] == "tta" and r["acc_std"] == res.tta_acc_std for r in table.rows)
    assert "TTA · 3 draws" in shown and f"{res.tta_acc:.2%} ± {100 * res.tta_acc_std:.2f}" in shown


@pytest.mark.slow
def test_the_cli_prints_the_seed_and_the_mean_and_std_over_draws(tiny_run):
    res = cockpit("tta", str(tiny_run.path), "--random-views", "2", "--draws", "3", "--seed", "5", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = " ".join(res.stdout.split())
    stored = tiny_run.results("tta")[-1].data
    assert "seeds 5-7" in out and f"{stored.tta_acc:.2%} ± {100 * stored.tta_acc_std:.2f}" in out
    assert "mean ± sample std (n − 1) over 3 draws" in out
    res = cockpit("tta", str(tiny_run.path), "--random-views", "2", timeout=300)
    assert res.returncode == 0 and "seed 0" in " ".join(res.stdout.split())  # the run's train.seed, shown
    res = cockpit("tta", str(tiny_run.path), "--draws", "0")
    assert res.returncode == 2
