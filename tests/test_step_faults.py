"""A skipped (non-finite) step leaves the run exactly as if it never happened, and the step's
metrics say what was trained: optimizer state, BN statistics, grad norms, the LR, set-lr under SWA."""

from __future__ import annotations

import math

import pytest
import torch

from engine.contracts import SetLR
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

BASE = ["data.synthetic_train=256", "data.synthetic_test=64", "train.batch_size=32", "train.threads=1",
        "train.epochs=1", "augment.flip=0", "schedule.name=constant", "monitor.every=1"]
OPTIMIZERS = {
    "sgd": ["optim.name=sgd", "optim.momentum=0.9"],
    "sgd_nesterov": ["optim.name=sgd", "optim.momentum=0.9", "optim.nesterov=true"],
    "adamw": ["optim.name=adamw", "optim.lr=0.001"],
    "adam": ["optim.name=adam", "optim.lr=0.001"],
    "rmsprop": ["optim.name=rmsprop", "optim.lr=0.001", "optim.momentum=0.9"],
}


def make(tmp_path=None, *sets: str) -> Trainer:
    spec = load_spec(None, [*BASE, *sets])
    return Trainer(spec, Run.create(tmp_path, spec) if tmp_path else None, log=lambda _m: None)


def poison_step(tr: Trainer, steps: set[int]) -> None:
    """One NaN pixel in the augmented batch of each of `steps` (1-based)."""
    real = tr.augment.train

    def train(x: torch.Tensor) -> torch.Tensor:
        out = real(x)
        if tr.step + 1 in steps:
            out = out.clone()
            out[0, 0, 0, 0] = float("nan")
        return out

    tr.augment.train = train


def train_on(tr: Trainer, batches) -> None:
    for xb, yb, _ in batches:
        tr.train_step(xb, yb)


def trained(optim: str, data, poisoned: set[int] = frozenset()) -> Trainer:
    """A fresh trainer (same seed, same initial weights) after one step per batch of `data`."""
    tr = make(None, *OPTIMIZERS[optim])
    poison_step(tr, set(poisoned))
    train_on(tr, data)
    return tr


def batches(n: int):
    tr = make()
    it = tr.train_loader.epoch_batches(0)
    return [next(it) for _ in range(n)]


def assert_same_model(a: Trainer, b: Trainer) -> None:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs"


@pytest.mark.parametrize("optim", list(OPTIMIZERS))
def test_a_skipped_first_step_trains_like_a_run_started_one_step_later(optim):
    data = batches(4)
    skipped, later = trained(optim, data, {1}), trained(optim, data[1:])
    assert all(torch.isfinite(p).all() for p in skipped.model.parameters())
    assert_same_model(skipped, later)
    for p in skipped.optimizer.state:  # momentum and moments too, not only the weights
        for key, value in skipped.optimizer.state[p].items():
            if key != "step" and isinstance(value, torch.Tensor):
                assert torch.isfinite(value).all(), f"{optim} {key} not finite"


@pytest.mark.parametrize("optim", ["sgd", "rmsprop"])
def test_a_nan_pixel_leaves_bn_statistics_as_if_the_step_never_happened(optim):
    data = batches(5)
    poisoned, clean = trained(optim, data, {3}), trained(optim, data[:2] + data[3:])
    assert_same_model(poisoned, clean)  # running mean/var and num_batches_tracked included
    bn = [m for m in poisoned.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bn and all(int(m.num_batches_tracked) == 4 for m in bn)


@pytest.mark.slow
def test_a_run_with_a_nan_pixel_still_learns_and_saves_finite_weights(tmp_path):
    tr = make(tmp_path, "data.synthetic_train=1024", "train.epochs=3", "optim.lr=0.05", "monitor.every=4")
    poison_step(tr, {3})
    assert tr.fit() == "finished"
    last = torch.load(tr.store.checkpoints / "last.pt", map_location="cpu", weights_only=False)
    assert all(torch.isfinite(v.float()).all() for v in last["model"].values())
    assert tr.store.last_values()["test_acc"] > 0.5  # chance is 0.1
    assert tr.store.last_values()["skipped_total"] == 1


def test_grad_norm_window_mean_counts_only_the_finite_steps(tmp_path):
    tr = make(tmp_path, "monitor.every=4")
    poison_step(tr, {2})
    norms = []
    for xb, yb, _ in batches(4):
        tr.train_step(xb, yb)
        total = torch.nn.utils.clip_grad_norm_(tr.model.parameters(), float("inf"))  # grads stay until the next step
        if math.isfinite(total):
            norms.append(float(total))
    tr.flush_window()
    last = tr.store.last_values()
    assert len(norms) == 3
    assert last["grad_norm"] == pytest.approx(sum(norms) / 3, rel=1e-5)
    assert last["grad_norm_max"] == pytest.approx(max(norms), rel=1e-5)
    assert last["skipped_steps"] == 1 and last["skipped_total"] == 1


def test_rmsprop_skips_a_nonfinite_step_instead_of_moving_on_zero_grads():
    tr = make(None, *OPTIMIZERS["rmsprop"], "optim.weight_decay=0.01")
    data = batches(2)
    train_on(tr, data[:1])
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in tr.optimizer.state.items()}
    poison_step(tr, {2})
    train_on(tr, data[1:])
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} moved on a skipped step"
    for p, s in tr.optimizer.state.items():
        for k, v in s.items():
            if k != "step":  # a counter RMSprop's update never reads
                assert torch.equal(v, state[id(p)][k]), f"RMSprop {k} moved on a skipped step"


def lrs_trained_and_recorded(tmp_path, *sets: str) -> tuple[list[float], list[float]]:
    """The LR each optimizer step used (seen from inside the optimizer) and the `lr` metric rows."""
    tr = make(tmp_path, *sets)
    used: list[float] = []
    tr.optimizer.register_step_pre_hook(lambda opt, *_: used.append(opt.param_groups[0]["lr"]))
    assert tr.fit() == "finished"
    return used, [v for _, v in tr.store.series("lr")]


def test_lr_metric_is_the_lr_of_the_step_for_step_decay(tmp_path):
    used, recorded = lrs_trained_and_recorded(tmp_path, "schedule.name=step", "schedule.milestones=[0.5]",
                                              "optim.lr=0.1")
    assert recorded == pytest.approx(used)
    assert recorded[3] == pytest.approx(0.1) and recorded[4] == pytest.approx(0.01)  # step 5 is the first decayed


def test_lr_metric_first_row_of_warmup_and_last_row_of_cosine(tmp_path):
    used, recorded = lrs_trained_and_recorded(tmp_path, "schedule.name=cosine", "schedule.warmup_epochs=0.5",
                                              "optim.lr=0.1")
    assert recorded == pytest.approx(used)
    assert recorded[0] == pytest.approx(0.1 / 4)  # 8 steps, 4 of warmup: step 1 trains at a quarter
    assert recorded[-1] > 0 and recorded[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))


def test_lr_metric_per_window_is_the_last_trained_step(tmp_path):
    used, recorded = lrs_trained_and_recorded(tmp_path, "schedule.name=cosine", "optim.lr=0.1", "monitor.every=4")
    assert recorded == pytest.approx([used[3], used[7]])


def test_set_lr_during_swa_sets_the_swa_lr_and_survives_a_checkpoint(tmp_path):
    tr = make(tmp_path, "swa.enabled=true", "swa.lr=0.02", "swa.anneal_epochs=0", "optim.lr=0.1")
    data = batches(4)
    tr.start_swa("test")
    reply = tr.handle_command(SetLR(lr=0.2))
    assert "SWA LR 0.2" in reply
    used: list[float] = []
    tr.optimizer.register_step_pre_hook(lambda opt, *_: used.append(opt.param_groups[0]["lr"]))
    train_on(tr, data)
    assert used[-1] == pytest.approx(0.2)  # SWALR anneals to the new SWA LR and holds it
    event = [e for e in tr.store.events_since() if e["kind"] == "set_lr"][-1]
    assert "SWA LR 0.2" in event["message"]
    again = make(None, "swa.enabled=true", "swa.lr=0.02", "swa.anneal_epochs=0", "optim.lr=0.1")
    again.load_state(tr.state_dict())
    assert again.optimizer.param_groups[0]["swa_lr"] == pytest.approx(0.2)
