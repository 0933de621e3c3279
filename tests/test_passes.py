"""Finishing passes: calibration, TTA, ensembles, SWA after the fact, the LR range test, and their CLI."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import checkpoint as ckpt
from engine.augment import Augmenter
from engine.evaluate import (
    calibrate,
    combine_logits,
    confusion,
    ensemble_evaluate,
    expected_calibration_error,
    fit_temperature,
    reliability,
    shift_batch,
    tta_evaluate,
)
from engine.contracts import TTA, Calibrate, CommandError, parse_command
from engine.passes import PassError, ensemble_runs, lr_find, pass_summary, run_pass, swa_pass
from engine.spec import AugmentSpec, load_spec
from engine.store import Run
from engine.train import Trainer

TINY = ["data.synthetic_train=256", "data.synthetic_test=128", "data.val_size=64", "train.batch_size=64",
        "train.epochs=1", "train.threads=1"]


# ------------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_torchmetrics(seed):
    from torchmetrics.classification import MulticlassCalibrationError

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1500, 10, generator=g) * (1 + seed)
    targets = torch.randint(0, 10, (1500,), generator=g)
    ours = expected_calibration_error(logits, targets, bins=15)
    ref = MulticlassCalibrationError(num_classes=10, n_bins=15, norm="l1")(logits, targets).item()
    assert ours == pytest.approx(ref, abs=1e-6)


def test_reliability_bins_partition_the_samples():
    g = torch.Generator().manual_seed(3)
    probs = F.softmax(torch.randn(500, 5, generator=g) * 2, 1)
    targets = torch.randint(0, 5, (500,), generator=g)
    ece, rows = reliability(probs, targets, bins=15)
    assert len(rows) == 15 and sum(r["count"] for r in rows) == 500
    assert rows[0]["lower"] == 0 and rows[-1]["upper"] == 1
    for r in rows:
        if r["count"]:
            assert r["lower"] <= r["conf"] < r["upper"] + 1e-12 and 0 <= r["acc"] <= 1
        else:
            assert r["conf"] is None and r["acc"] is None
    assert ece == pytest.approx(sum(abs(r["acc"] - r["conf"]) * r["count"] / 500 for r in rows if r["count"]))


def _labelled_logits(n: int, seed: int, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits z and labels drawn from softmax(z): perfectly calibrated at T = 1."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g) * 2
    y = torch.multinomial(F.softmax(z, 1), 1, generator=g).squeeze(1)
    return z, y


def test_temperature_above_one_on_overconfident_logits():
    z, y = _labelled_logits(4000, 0)
    val, test = z[:2000] * 5, z[2000:] * 5  # 5x overconfident
    out = calibrate(val, y[:2000], test, y[2000:])
    assert out["temperature"] > 1
    assert out["temperature"] == pytest.approx(5, rel=0.15)  # recovers the scale it was given
    assert out["after"]["nll"] <= out["before"]["nll"]
    assert out["after"]["ece"] < out["before"]["ece"]
    assert out["after"]["acc"] == out["before"]["acc"]  # a temperature never changes the argmax
    assert len(out["reliability"]["before"]) == len(out["reliability"]["after"]) == 15
    assert set(out["reliability"]["after"][0]) == {"lower", "upper", "conf", "acc", "count"}
    json.dumps(out)  # storable as is


def test_temperature_below_one_on_underconfident_logits():
    z, y = _labelled_logits(3000, 1)
    t = fit_temperature(z * 0.3, y)
    assert t < 1
    out = calibrate(z[:1500] * 0.3, y[:1500], z[1500:] * 0.3, y[1500:], 10)
    assert out["temperature"] < 1 and out["bins"] == 10 and out["after"]["nll"] <= out["before"]["nll"]


def test_calibrate_needs_a_validation_split():
    z, y = _labelled_logits(100, 2)
    with pytest.raises(ValueError, match="data.val_size"):
        calibrate(z[:0], y[:0], z, y)


# ---------------------------------------------------------------------------------------- TTA


class MeanColour(nn.Module):
    """Logits from the per-channel mean: invariant to any flip (and any permutation of pixels)."""

    def __init__(self, k: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, k)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


class LeftHalf(nn.Module):
    """Looks at the left half only: flipping changes what it sees."""

    def __init__(self, k: int = 4):
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(3, k)

    def forward(self, x):
        return self.fc(x[..., : x.shape[-1] // 2].mean(dim=(2, 3)))


def _images(n: int = 96, k: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    return x, y


def test_tta_flip_views_agree_on_a_flip_invariant_model():
    x, y = _images()
    aug = Augmenter(AugmentSpec(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    for combine in ("logits", "probs"):
        out = tta_evaluate(MeanColour(), x, y, aug, views=["identity", "flip"], combine=combine, batch_size=32)
        assert out["views"]["flip"] == out["views"]["identity"] == out["base_acc"]
        assert out["tta_acc"] == out["base_acc"] and out["delta"] == 0
        assert out["combine"] == combine and out["n_views"] == 2
    lh = tta_evaluate(LeftHalf(), x, y, aug, views=["identity", "flip", "translate"], translate=2, batch_size=40)
    assert list(lh["views"]) == ["identity", "flip", "right2", "left2", "down2", "up2"]
    json.dumps(lh)


def test_tta_identity_is_the_baseline_even_when_not_averaged():
    x, y = _images()
    aug = Augmenter(AugmentSpec(), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    out = tta_evaluate(LeftHalf(), x, y, aug, views=["flip"])
    assert list(out["views"]) == ["flip"]
    assert out["tta_acc"] == out["views"]["flip"]
    base = (LeftHalf()(aug.eval(x)).argmax(1) == y).float().mean().item()
    assert out["base_acc"] == pytest.approx(base)


def test_tta_random_views_are_seeded_and_leave_the_rng_alone():
    x, y = _images()
    aug = Augmenter(AugmentSpec(flip=0.5, translate=2), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    model = LeftHalf()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = tta_evaluate(model, x, y, aug, views=["identity"], random_views=3, seed=7, batch_size=32)
    assert torch.equal(torch.get_rng_state(), state)  # the training RNG is where it was
    b = tta_evaluate(model, x, y, aug, views=["identity"], random_views=3, seed=7, batch_size=32)
    assert a == b
    assert list(a["views"]) == ["identity", "random1", "random2", "random3"]


def test_shift_batch_moves_content_with_reflect_padding():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6) / 255
    right = shift_batch(x, 0, 1)
    assert torch.equal(right[..., 1:], x[..., :-1]) and torch.equal(right[..., 0], x[..., 1])  # reflect
    down = shift_batch(x, 2, 0)
    assert torch.equal(down[..., 2:, :], x[..., :-2, :])
    assert torch.equal(shift_batch(x, 0, 0), x)


def test_combine_probs_averages_probabilities():
    a = torch.tensor([[4.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])
    probs = combine_logits([a, b], "probs").exp()
    assert torch.allclose(probs, (F.softmax(a, 1) + F.softmax(b, 1)).double() / 2)
    assert torch.allclose(combine_logits([a, b], "logits"), torch.tensor([[2.0, 0.5]], dtype=torch.float64))


# ---------------------------------------------------------------------------------- ensembles


def _onehot(preds, k=3, margin=10.0):
    return F.one_hot(torch.tensor(preds), k).float() * margin


def test_ensemble_vote_and_mean_probability_on_crafted_logits():
    targets = torch.tensor([0, 1, 2, 0])
    a = _onehot([0, 1, 0, 1])  # 2/4
    b = _onehot([0, 2, 2, 1])  # 2/4
    c = _onehot([1, 1, 2, 0])  # 3/4
    # on the last sample a and b lean to class 1 only just, c is sure of class 0
    a[3] = torch.tensor([0.9, 1.0, -5.0])
    b[3] = torch.tensor([0.9, 1.0, -5.0])
    out = ensemble_evaluate([a, b, c], targets, ["a", "b", "c"])
    assert [m["acc"] for m in out["members"]] == [0.5, 0.5, 0.75]
    assert [m["run"] for m in out["members"]] == ["a", "b", "c"]
    assert out["vote_acc"] == 0.75  # the last sample is outvoted 2 to 1
    assert out["mean_prob_acc"] == 1.0  # but c's confidence carries the mean probability
    assert out["best_member_acc"] == 0.75
    assert out["gain"] == pytest.approx(0.25) and out["vote_gain"] == 0
    json.dumps(out)


def test_ensemble_vote_tie_goes_to_the_smallest_class_and_shapes_must_match():
    out = ensemble_evaluate([_onehot([2]), _onehot([1])], torch.tensor([1]))
    assert out["vote_acc"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        ensemble_evaluate([_onehot([0, 1]), _onehot([0])], torch.tensor([0, 1]))


def test_confusion_matrix():
    out = confusion(_onehot([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), ["a", "b", "c"])
    assert out["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert out["per_class_acc"] == [1.0, 1.0, 0.5] and out["classes"] == ["a", "b", "c"]


# --------------------------------------------------------------------------- passes on a run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished tiny run with a validation split (trained once for the module)."""
    runs_dir = tmp_path_factory.mktemp("passes") / "runs"
    spec = load_spec(None, TINY)
    run = Run.create(runs_dir, spec, preset="test")
    assert Trainer(spec, run, log=lambda _m: None).fit() == "finished"
    run.set_meta(state="finished")
    return run


def test_calibrate_pass_stores_result_confusion_and_event(tiny_run):
    data = run_pass(tiny_run, Calibrate())
    assert data.checkpoint == "best.pt" and data.temperature > 0
    assert data.after.nll <= data.before.nll + 1e-9
    stored = tiny_run.results("calibrate")[-1]
    assert stored.data == data and stored.checkpoint == "best.pt"
    conf = tiny_run.results("confusion")[-1].data
    assert len(conf.matrix) == 10 and sum(map(sum, conf.matrix)) == 128 and len(conf.classes) == 10
    assert any(e["kind"] == "calibrated" for e in tiny_run.events_since(0))
    assert "T=" in pass_summary(data)


def test_tta_pass_uses_spec_defaults_and_options(tiny_run):
    data = run_pass(tiny_run, TTA())
    assert set(data.views) == {"identity", "flip"} and data.combine == "logits"
    data = run_pass(tiny_run, TTA(checkpoint="last", views="identity,translate", random_views=1, combine="probs"))
    assert data.checkpoint == "last.pt" and data.n_views == 6 and data.combine == "probs"
    assert tiny_run.results("tta")[-1].data.views == data.views
    with pytest.raises(CommandError, match="view"):  # the typed command refuses an option it does not have
        parse_command("tta", {"view": "flip"})


def test_swa_pass_saves_swa_checkpoint_and_only_adds_swa_rows(tiny_run):
    before = {n: tiny_run.series(n) for n in tiny_run.metric_names()}
    data = swa_pass(tiny_run, epochs=2)
    assert data.epochs == 2 and data.base_loss is not None
    assert data.delta == pytest.approx(data.swa_acc - data.base_acc)
    assert data.step == data.base_step + 2 * 3  # 192 train images / 64 per batch
    state = ckpt.load(ckpt.path_for(tiny_run.checkpoints, "swa"))
    assert state["step"] == data.step and "model" in state
    after = {n: tiny_run.series(n) for n in tiny_run.metric_names()}
    for name, rows in before.items():
        if not name.startswith("swa"):
            assert after[name] == rows  # the run's own curves are untouched
    assert after["swa_test_acc"][-1] == (data.step, pytest.approx(data.swa_acc))
    assert after["swa_val_acc"][-1][0] == data.step and 0 <= after["swa_val_acc"][-1][1] <= 1  # what sweeps rank
    assert tiny_run.results("swa")[-1].data.swa_acc == data.swa_acc
    # the swa checkpoint can then be calibrated / evaluated like any other
    cal = run_pass(tiny_run, Calibrate(checkpoint="swa"))
    assert cal.checkpoint == "swa.pt" and tiny_run.results("calibrate")[-1].checkpoint == "swa.pt"


def test_pass_errors_are_clear(tmp_path, tiny_run):
    spec = load_spec(None, [s for s in TINY if not s.startswith("data.val_size")])
    run = Run.create(tmp_path, spec)
    with pytest.raises(PassError, match=r"data.val_size > 0"):
        run_pass(run, Calibrate())
    with pytest.raises(PassError, match="no usable checkpoint"):
        run_pass(run, TTA())
    with pytest.raises(CommandError, match="unknown command 'bogus'"):
        parse_command("bogus")


def test_live_trainer_passes_use_the_in_memory_model(tiny_run):
    spec = tiny_run.spec()
    t = Trainer(spec, tiny_run, log=lambda _m: None)
    t.load_state(ckpt.load(ckpt.path_for(tiny_run.checkpoints, "last")))
    rng = torch.get_rng_state()
    weights = {k: v.clone() for k, v in t.model.state_dict().items()}
    data = run_pass(tiny_run, TTA(random_views=2), live=t.parts, live_step=t.step)
    assert data.checkpoint == "live" and data.step == t.step
    cal = run_pass(tiny_run, Calibrate(), live=t.parts, live_step=t.step)
    assert tiny_run.results("calibrate")[-1].checkpoint == "live" and cal.temperature > 0
    assert torch.equal(torch.get_rng_state(), rng)  # the run's RNG stream is untouched
    assert all(torch.equal(v, t.model.state_dict()[k]) for k, v in weights.items())
    assert t.model.training  # left in training mode for the next step
    # with a checkpoint option the worker evaluates a copy loaded from that file
    best = run_pass(tiny_run, TTA(checkpoint="best"), live=t.parts, live_step=t.step)
    assert best.checkpoint == "best.pt"


def test_ensemble_runs_and_data_mismatch(tiny_run, tmp_path):
    # a second member: a copy of the run whose best checkpoint holds other weights
    other = tmp_path / "member"
    shutil.copytree(tiny_run.path, other)
    state = ckpt.load(ckpt.path_for(other / "checkpoints", "best"))
    torch.manual_seed(5)
    state["model"] = {k: (v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v) for k, v in state["model"].items()}
    ckpt.save_atomic(state, ckpt.path_for(other / "checkpoints", "best"))
    member = Run(other)
    data = ensemble_runs([tiny_run, member])
    assert [m.run for m in data.members] == [tiny_run.run_id, "member"]
    assert data.best_member_acc == max(m.acc for m in data.members)
    assert data.gain == pytest.approx(data.mean_prob_acc - data.best_member_acc)
    assert tiny_run.results("ensemble")[-1].data.vote_acc == data.vote_acc
    assert data.mode_vote_gain == pytest.approx(data.mode_vote_acc - data.best_member_acc)  # the guide's vote, too
    per_run = ensemble_runs([tiny_run, member], checkpoint=["last", "best"], store=False)  # one checkpoint per run
    assert per_run.checkpoints == ["last.pt", "best.pt"] and [m.checkpoint for m in per_run.members] == per_run.checkpoints

    bad = Run.create(tmp_path / "runs", load_spec(None, TINY + ["data.synthetic_classes=5"]))
    with pytest.raises(PassError, match="do not share a test set"):
        ensemble_runs([tiny_run, bad], store=False)
    with pytest.raises(PassError, match="at least two"):
        ensemble_runs([tiny_run])


# ------------------------------------------------------------------------------------ LR finder


def test_lr_find_suggests_an_lr_inside_the_sweep(tmp_path):
    spec = load_spec(None, TINY)
    run = Run.create(tmp_path, spec)
    data = lr_find(spec, steps=30, start_lr=1e-4, end_lr=10, run=run)
    assert 1e-4 <= data.suggested_lr <= 10
    assert data.method in ("steepest", "min_loss/10")
    assert 2 <= len(data.points) <= 30
    lrs = [p.lr for p in data.points]
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-4)
    assert [s for s, _ in run.series("lrfind/loss")] == [p.step for p in data.points]
    assert run.series("lrfind/lr")[0][1] == pytest.approx(1e-4)
    assert run.results("lr_find")[-1].data.suggested_lr == data.suggested_lr


def test_lr_find_stops_when_the_loss_diverges():
    spec = load_spec(None, TINY)
    data = lr_find(spec, steps=40, start_lr=1e-3, end_lr=1e5)
    assert data.stopped_early and len(data.points) < 40 and data.stop_reason
    assert 1e-3 <= data.suggested_lr <= 1e5


# --------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_app():
    import typer

    from cockpit.cli import passes as pc

    app = typer.Typer()
    app.command("calibrate")(pc.calibrate_command)
    app.command("tta")(pc.tta_command)
    app.command("swa")(pc.swa_command)
    app.command("ensemble")(pc.ensemble_command)
    app.command("lr-find")(pc.lr_find_command)
    return app


def invoke(app, *args):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "120", "NO_COLOR": "1"})


@pytest.mark.slow
def test_cli_passes_offline(cli_app, tiny_run):
    runs_dir = str(tiny_run.path.parent)
    res = invoke(cli_app, "calibrate", tiny_run.run_id, "--runs-dir", runs_dir)
    assert res.exit_code == 0, res.output
    assert "temperature scaling" in res.output and "before" in res.output and "after" in res.output
    res = invoke(cli_app, "tta", tiny_run.run_id, "--views", "identity,flip,translate", "--runs-dir", runs_dir)
    assert res.exit_code == 0, res.output
    assert "right2" in res.output and "with TTA" in res.output
    res = invoke(cli_app, "tta", tiny_run.run_id, "--views", "sideways", "--runs-dir", runs_dir)
    assert res.exit_code == 2 and "sideways" in res.output
    res = invoke(cli_app, "swa", tiny_run.run_id, "--epochs", "1", "--runs-dir", runs_dir)
    assert res.exit_code == 0, res.output
    assert "SWA (averaged" in res.output
    res = invoke(cli_app, "ensemble", tiny_run.run_id, tiny_run.run_id, "--runs-dir", runs_dir)
    assert res.exit_code == 2 and "twice" in res.output
    res = invoke(cli_app, "calibrate", "no-such-run", "--runs-dir", runs_dir)
    assert res.exit_code == 2 and "no run" in res.output


def test_cli_tta_takes_the_guide_recipe_and_names_the_valid_ones(cli_app, tiny_run):
    runs_dir = str(tiny_run.path.parent)
    res = invoke(cli_app, "tta", tiny_run.run_id, "--recipe", "guide", "--runs-dir", runs_dir)
    assert res.exit_code == 0, res.output
    assert "with TTA (5 views, mean logits)" in res.output, res.output
    stored = tiny_run.results("tta")[-1].data
    assert stored.random_views == 5 and stored.n_views == 5 and stored.combine == "logits"
    res = invoke(cli_app, "tta", tiny_run.run_id, "--recipe", "guide", "--random-views", "2", "--runs-dir", runs_dir)
    assert res.exit_code == 0 and tiny_run.results("tta")[-1].data.n_views == 2, "an option given overrides the recipe's"
    res = invoke(cli_app, "tta", tiny_run.run_id, "--recipe", "views", "--runs-dir", runs_dir)
    assert res.exit_code == 0 and set(tiny_run.results("tta")[-1].data.views) == {"identity", "flip"}, res.output
    res = invoke(cli_app, "tta", tiny_run.run_id, "--recipe", "airbench", "--runs-dir", runs_dir)
    assert res.exit_code == 2 and "unknown recipe 'airbench'" in res.output and "valid: views, guide" in res.output


@pytest.mark.slow
def test_cli_lr_find_makes_a_run(cli_app, tmp_path):
    runs_dir = tmp_path / "runs"
    res = invoke(cli_app, "lr-find", "--steps", "20", "--runs-dir", str(runs_dir),
                 *[a for s in TINY for a in ("--set", s)])
    assert res.exit_code == 0, res.output
    assert "suggested" in res.output and "optim.lr=" in res.output
    (run_dir,) = list(runs_dir.iterdir())
    run = Run(run_dir)
    assert run_dir.name.endswith("-lrfind") and run.state() == "finished"
    assert run.results("lr_find") and run.series("lrfind/loss")


@pytest.mark.slow
def test_cli_sends_passes_to_a_live_worker(cli_app, tiny_run, tmp_path):
    """A live run gets the pass through its commands table; a loop with the worker's pass handler
    (the live model, the real command router) answers between two steps."""
    from engine.worker import live_pass

    live_dir = tmp_path / "live"
    shutil.copytree(tiny_run.path, live_dir)
    live = Run(live_dir)
    live.set_meta(state="running", pid=os.getpid())
    stop = threading.Event()

    def worker():
        t = Trainer(live.spec(), Run(live_dir), log=lambda _m: None, on_pass=live_pass)  # the store in this thread
        while not stop.is_set():
            t.commands.poll(force=True)
            time.sleep(0.05)
        t.store.close()

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    try:
        res = invoke(cli_app, "calibrate", str(live_dir), "--timeout", "60")
        assert res.exit_code == 0, res.output
        assert "live model" in res.output and "temperature" in res.output
        assert live.results("calibrate")[-1].checkpoint == "live"
        res = invoke(cli_app, "tta", str(live_dir), "--random-views", "1", "--timeout", "60")
        assert res.exit_code == 0, res.output
        assert "random1" in res.output
    finally:
        stop.set()
        th.join(5)
        live.set_meta(state="finished")


def test_runs_with_the_same_id_in_different_runs_dirs_can_be_ensembled(tiny_run, tmp_path):
    twin = tmp_path / "elsewhere" / tiny_run.run_id  # same id, another runs dir: a different run
    shutil.copytree(tiny_run.path, twin)
    data = ensemble_runs([tiny_run, Run(twin)], store=False)
    assert len(data.members) == 2
    with pytest.raises(PassError, match="listed twice"):
        ensemble_runs([tiny_run, Run(tiny_run.path)], store=False)
