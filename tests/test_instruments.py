"""Instruments: what the loop measures, how it reads it (one transfer per window), and alarms."""

from __future__ import annotations

import math

import pytest
import torch

from engine.spec import load_spec
from engine.store import Run
from engine.train import StopRun, Trainer

BASE = ["data.synthetic_train=256", "data.synthetic_test=64", "train.batch_size=32", "train.threads=1",
        "train.epochs=1"]


def make(tmp_path, *sets: str, run: bool = True) -> Trainer:
    spec = load_spec(None, [*BASE, *sets])
    return Trainer(spec, Run.create(tmp_path, spec) if run else None, log=lambda _m: None)


def batches(tr: Trainer, n: int):
    it = tr.train_loader.epoch_batches(0)
    return [next(it) for _ in range(n)]


class NoHostSync:
    """Make every host-sync entry point of a tensor raise while active."""

    NAMES = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")

    def __enter__(self):
        self.saved = {n: getattr(torch.Tensor, n) for n in self.NAMES}

        def boom(name):
            def f(self, *a, **k):
                raise AssertionError(f"host sync: Tensor.{name} in the per-step path")
            return f

        for n in self.NAMES:
            setattr(torch.Tensor, n, boom(n))
        return self

    def __exit__(self, *exc):
        for n, f in self.saved.items():
            setattr(torch.Tensor, n, f)


def test_the_step_never_syncs_with_the_host_even_on_sampled_steps(tmp_path):
    tr = make(tmp_path, "monitor.every=100", "monitor.grad_flow_every=1", "monitor.activations_every=1",
              "monitor.difficulty_every=1", "train.grad_clip=1.0", "augment.translate=2", "augment.erasing.p=0.5",
              "augment.color_jitter.p=0.5", "augment.cutout=4", "augment.rotation=10", "augment.grayscale=0.2",
              "augment.resized_crop.enabled=true")
    data = batches(tr, 4)
    with NoHostSync():
        for xb, yb, _ in data:
            tr.train_step(xb, yb)
    assert tr.step == 4
    tr.flush_window()  # the one read per window is allowed
    names = {n for n in tr.store.metric_names()}
    assert {"train_loss", "grad_norm", "lr", "images_per_s", "act/saturation", "act/dead", "difficulty/p50"} <= names
    assert any(n.startswith("grad_norm/") for n in names) and any(n.startswith("update_ratio/") for n in names)


def test_flush_makes_exactly_one_host_transfer(tmp_path, monkeypatch):
    tr = make(tmp_path, "monitor.every=100", "monitor.grad_flow_every=1", "monitor.activations_every=2",
              "monitor.difficulty_every=1")
    for xb, yb, _ in batches(tr, 3):
        tr.train_step(xb, yb)
    calls = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append(1) or original(self))
    tr.flush_window()
    assert len(calls) == 1


def test_grad_norm_matches_torch_and_groups_add_up(tmp_path):
    tr = make(tmp_path, "monitor.every=1", "monitor.grad_flow_every=1", run=True)
    (xb, yb, _), = batches(tr, 1)
    tr.train_step(xb, yb)
    # the grads are still there after the step: compare with torch's own total norm
    expected = torch.nn.utils.clip_grad_norm_(tr.model.parameters(), float("inf")).item()
    tr.flush_window()
    last = tr.store.last_values()
    assert last["grad_norm"] == pytest.approx(expected, rel=1e-4)
    groups = [v for k, v in last.items() if k.startswith("grad_norm/")]
    assert math.sqrt(sum(v * v for v in groups)) == pytest.approx(expected, rel=1e-4)
    assert set(k.split("/")[1] for k in last if k.startswith("grad_norm/")) == {"stem", "block1", "block2", "fc"}


def test_activation_statistics_follow_their_definitions(tmp_path):
    tr = make(tmp_path, "monitor.every=1", "monitor.activations_every=1")
    (xb, yb, _), = batches(tr, 1)
    tr.train_step(xb, yb)
    tr.flush_window()
    last = tr.store.last_values()
    for k, v in last.items():
        if k.startswith(("act/zeros/", "act/dead/", "act/saturation")):
            assert 0.0 <= v <= 1.0, k
    assert not tr.model._forward_hooks and all(not m._forward_hooks for m in tr.model.modules()), "hooks removed"


def test_saturation_of_se_gates_counts_values_near_their_bounds(tmp_path):
    from engine.instruments import Instruments
    from engine.spec import MonitorSpec

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Sigmoid())
    inst = Instruments(model, MonitorSpec(activations_every=1), torch.device("cpu"))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([-10.0, 10.0, 0.0, 0.0]))  # two saturated gates, two at 0.5
    with inst.watch_activations(1):
        model(torch.randn(8, 4))
    _, rows = inst.collect([])
    values = {name: v for _, name, v in rows}
    assert values["act/gate"] == pytest.approx(0.5) and values["act/gate/1"] == pytest.approx(0.5)
    assert "act/saturation" not in values and "act/dead" not in values  # a gate is no ReLU


def test_sample_difficulty_quantiles_are_ordered_and_histogram_sums_to_one(tmp_path):
    tr = make(tmp_path, "monitor.every=1", "monitor.difficulty_every=1")
    (xb, yb, _), = batches(tr, 1)
    tr.train_step(xb, yb)
    tr.flush_window()
    last = tr.store.last_values()
    assert last["difficulty/p10"] <= last["difficulty/p50"] <= last["difficulty/p90"] <= last["difficulty/max"]
    assert sum(v for k, v in last.items() if k.startswith("difficulty/hist/")) == pytest.approx(1.0)


def test_a_nonfinite_step_is_skipped_and_after_n_in_a_row_the_run_stops(tmp_path):
    tr = make(tmp_path, "monitor.every=1", "monitor.nonfinite_limit=3")
    (xb, yb, _), = batches(tr, 1)
    tr.train_step(xb, yb)
    tr.flush_window()
    good = {k: v.clone() for k, v in tr.model.state_dict().items()}
    real_forward = tr.model.forward
    tr.model.forward = lambda x: real_forward(x) * float("nan")
    tr.stepper.forward = tr.model
    for i in range(2):
        tr.train_step(xb, yb)
        tr.flush_window()
    for k, v in tr.model.state_dict().items():  # weights and BN running statistics alike
        assert torch.equal(v, good[k]), f"{k} changed on a skipped step"
    tr.train_step(xb, yb)
    with pytest.raises(StopRun) as stop:
        tr.flush_window()
    assert stop.value.state == "failed" and "non-finite" in stop.value.reason
    kinds = [e["kind"] for e in tr.store.events_since()]
    assert kinds.count("nonfinite") == 3
    last = tr.store.last_values()
    assert last["skipped_steps"] == 1 and last["skipped_total"] == 3  # this window's, and the run's


def test_grad_spike_alarm(tmp_path):
    tr = make(tmp_path, "monitor.every=1", "monitor.spike_factor=5")
    for xb, yb, _ in batches(tr, 4):
        tr.train_step(xb, yb)
        tr.flush_window()
    (xb, yb, _), = batches(tr, 1)
    real_forward = tr.model.forward
    tr.model.forward = lambda x: real_forward(x) * 1000.0
    tr.stepper.forward = tr.model
    tr.train_step(xb, yb)
    tr.flush_window()
    assert "grad_spike" in [e["kind"] for e in tr.store.events_since()]


@pytest.mark.slow
def test_tensorboard_events_are_readable_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tr = make(tmp_path, "monitor.every=2", "monitor.tensorboard=true")
    assert tr.fit() == "finished"
    acc = EventAccumulator(str(tr.store.path / "tb"))
    acc.Reload()
    tags = acc.Tags()
    assert {"train_loss", "grad_norm", "test_acc"} <= set(tags["scalars"])
    assert any(t.startswith("weights/") for t in tags["histograms"])
    assert len(acc.Scalars("train_loss")) == 256 // 32 // 2


def test_gelu_units_count_as_off_below_minus_three():
    from engine.instruments import Instruments
    from engine.spec import MonitorSpec

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.GELU())
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.copy_(torch.tensor([-10.0, 10.0]))  # channel 0 always deep in the flat tail
    inst = Instruments(model, MonitorSpec(activations_every=1), torch.device("cpu"))
    with inst.watch_activations(1):
        model(torch.rand(4, 1, 3, 3))
    _, rows = inst.collect([])
    values = {name: v for _, name, v in rows}
    assert values["act/dead"] == pytest.approx(0.5) and values["act/saturation"] == pytest.approx(0.5)


def test_a_run_failed_by_the_nonfinite_limit_says_why_in_every_view(tmp_path):
    """The reason is in meta `error`, so `runs`, `runs --json`, attach and the report all give it."""
    import json as jsonlib

    from .conftest import cockpit

    tr = make(tmp_path, "monitor.every=1", "monitor.nonfinite_limit=2", "train.epochs=1")
    real_forward = tr.model.forward
    tr.model.forward = lambda x: real_forward(x) * float("nan")
    tr.stepper.forward = tr.model
    assert tr.fit() == "failed"
    tr.store.set_meta(state="failed", ended=1.0)  # as the worker records the end state
    why = "2 non-finite steps in a row (monitor.nonfinite_limit=2)"
    assert why in tr.store.meta()["error"]
    run_id, env = tr.store.run_id, {"COCKPIT_RUNS": str(tmp_path)}
    listed = [jsonlib.loads(line) for line in cockpit("runs", "--json", env=env).stdout.splitlines()]
    assert why in listed[0]["error"] and listed[0]["state"] == "failed"
    assert why in cockpit("runs", env=env).stdout.replace("\n", " ")
    assert why in cockpit("attach", run_id, env=env).stderr.replace("\n", " ")
    assert cockpit("report", run_id, "--format", "all", env=env).returncode == 0
    assert why in jsonlib.loads((tmp_path / run_id / "report.json").read_text())["run"]["error"]
    assert why in (tmp_path / run_id / "report.md").read_text().replace("\\", "")  # Markdown escapes the _
