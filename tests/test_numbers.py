"""Numbers you can trust: each metric of the README's "What the engine measures" table
recomputed independently from the same tensors, through the real Trainer on CPU.

The shadow: before each step, a deep copy of the model takes the same prepared batch in train mode;
loss, accuracy, gradients, activations and per-sample losses are computed from it here, by hand, and
compared with what the engine wrote to run.db. Tolerances: float32 results agree to rel 1e-4 (the
engine and the shadow run the same float32 kernels, summed in a different order); counts and
fractions over a batch exactly (1e-6); LRs to rel 1e-9 (closed forms in float64).
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.contracts import SetLR
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer

BASE = ["data.synthetic_train=256", "data.synthetic_test=64", "train.batch_size=32", "train.threads=1",
        "train.epochs=1", "augment.flip=0", "schedule.name=constant", "monitor.every=4"]
F32, EXACT, LR = dict(rel=1e-4, abs=1e-6), dict(abs=1e-6), dict(rel=1e-9)


def make(tmp_path, *sets: str) -> Trainer:
    spec = load_spec(None, [*BASE, *sets])
    return Trainer(spec, Run.create(tmp_path, spec), log=lambda _m: None)


def at(tr: Trainer, step: int) -> dict[str, float]:
    """Every metric the store holds at `step`."""
    rows = tr.store.con.execute("SELECT name, value FROM metrics WHERE step = ?", (step,))
    return {n: v for n, v in rows}


class Shadow:
    """Records what each step saw (prepared batch, labels, a copy of the model before it) and
    recomputes the step's figures from them."""

    def __init__(self, tr: Trainer, poison: set[int] = frozenset()):
        self.tr, self.steps = tr, []
        real = tr.window.prepare

        def prepare(xb: torch.Tensor) -> torch.Tensor:
            x = real(xb)
            if tr.step + 1 in poison:  # one NaN pixel: a non-finite step the engine must skip
                x = x.clone()
                x[0, 0, 0, 0] = float("nan")
            self.steps.append({"x": x.detach().clone(), "model": copy.deepcopy(tr.model)})
            return x

        tr.window.prepare = prepare

    def run(self, n: int) -> None:
        it = self.tr.train_loader.epoch_batches(0)
        for _ in range(n):
            xb, yb, _ = next(it)
            self.tr.train_step(xb, yb)
            self.steps[-1]["y"] = yb.clone()

    def recompute(self, i: int, smoothing: float = 0.0) -> dict:
        s = self.steps[i]
        model, x, y = s["model"], s["x"], s["y"]
        acts = watch(model)
        logits = model(x)
        for h in acts.pop("_handles"):
            h.remove()
        loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norm = torch.cat([g.reshape(-1).double() for g in grads]).square().sum().sqrt().item()
        per_sample = F.cross_entropy(logits.detach(), y, reduction="none", label_smoothing=smoothing)
        return {"loss": loss.item(), "correct": (logits.argmax(1) == y).sum().item(), "n": len(y),
                "grad_norm": norm, "per_sample": per_sample, "acts": acts}


def watch(model: nn.Module) -> dict:
    """Forward hooks that keep every activation output (and a GELU's input), by module name."""
    kept: dict = {"_handles": []}
    for name, m in model.named_modules():
        if isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU)):
            kept["_handles"].append(m.register_forward_hook(
                lambda _m, inp, out, name=name: kept.setdefault(name, []).append(out.detach().double())))
    return kept


def block_figures(acts: dict) -> dict[str, float]:
    """act/* per block, by the README's definitions, written out longhand."""
    relu, gate = defaultdict(list), defaultdict(list)
    for name, outs in acts.items():
        block = name.rsplit(".", 1)[0] if "." in name else name
        for y in outs:
            if name.endswith("gate"):
                sat = ((y < 0.01) | (y > 0.99)).double().mean().item()
                gate[block].append((y.mean().item(), sat))
                continue
            zero = y == 0
            per_channel = zero.transpose(0, 1).reshape(y.shape[1], -1)
            dead = sum(bool(row.all()) for row in per_channel) / y.shape[1]
            relu[block].append((y.mean().item(), y.std().item(), zero.double().mean().item(), dead,
                                zero.double().mean().item()))
    out = {}
    for block, rows in relu.items():
        for k, col in zip(("mean", "std", "zeros", "dead", "saturation"), zip(*rows)):
            out[f"act/{k}/{block}"] = sum(col) / len(col)  # several ReLUs in a block: the mean of theirs
    for block, rows in gate.items():
        for k, col in zip(("gate_mean", "gate"), zip(*rows)):
            out[f"act/{k}/{block}"] = sum(col) / len(col)
    out["act/dead"] = sum(v for k, v in out.items() if k.startswith("act/dead/")) / len(relu)
    out["act/saturation"] = sum(v for k, v in out.items() if k.startswith("act/saturation/")) / len(relu)
    if gate:
        out["act/gate"] = sum(v for k, v in out.items() if k.startswith("act/gate/")) / len(gate)
    return out


# ------------------------------------------------------------------ the window, with a skipped step


def test_window_metrics_with_a_skipped_step_match_an_independent_recomputation(tmp_path):
    tr = make(tmp_path, "train.label_smoothing=0.1", "monitor.difficulty_every=4", "train.grad_clip=1.0")
    shadow = Shadow(tr, poison={2})
    shadow.run(4)
    tr.flush_window()
    got = at(tr, 4)
    finite = [shadow.recompute(i, 0.1) for i in (0, 2, 3)]  # step 2 was skipped
    assert got["train_loss"] == pytest.approx(sum(r["loss"] * r["n"] for r in finite) / 96, **F32)
    assert got["train_acc"] == pytest.approx(sum(r["correct"] for r in finite) / 96, **EXACT)
    assert got["grad_norm"] == pytest.approx(sum(r["grad_norm"] for r in finite) / 3, **F32)  # before clipping
    assert got["grad_norm_max"] == pytest.approx(max(r["grad_norm"] for r in finite), **F32)
    assert got["skipped_steps"] == 1 and got["skipped_total"] == 1
    assert got["lr"] == pytest.approx(tr.spec.optim.lr, **LR)
    # difficulty: the per-sample *training* loss (label smoothing included) of step 4's batch
    loss = finite[-1]["per_sample"].double()
    q = torch.quantile(loss, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    for name, v in zip(("p10", "p50", "p90"), q.tolist()):
        assert got[f"difficulty/{name}"] == pytest.approx(v, **F32)
    assert got["difficulty/max"] == pytest.approx(loss.max().item(), **F32)
    hist = torch.histc(loss.clamp(max=5 - 1e-6), bins=10, min=0, max=5) / len(loss)
    assert [got[f"difficulty/hist/{i:02d}"] for i in range(10)] == pytest.approx(hist.tolist(), **EXACT)


def test_per_group_grad_norms_and_update_ratios(tmp_path):
    tr = make(tmp_path, "monitor.grad_flow_every=1", "monitor.every=1", "optim.name=sgd", "optim.momentum=0")
    shadow = Shadow(tr)
    shadow.run(1)
    after = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    tr.flush_window()
    got = at(tr, 1)
    model = shadow.steps[0]["model"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    shadow.recompute(0)
    groups = defaultdict(list)
    for n, p in model.named_parameters():
        groups[n.split(".")[0]].append(n)
    grads = dict(model.named_parameters())
    for g, names in groups.items():
        norm = math.sqrt(sum(grads[n].grad.double().square().sum().item() for n in names))
        delta = math.sqrt(sum((after[n] - before[n]).double().square().sum().item() for n in names))
        weight = math.sqrt(sum(before[n].double().square().sum().item() for n in names))
        assert got[f"grad_norm/{g}"] == pytest.approx(norm, **F32)
        assert got[f"update_ratio/{g}"] == pytest.approx(delta / weight, rel=1e-3)  # a small difference of floats


# ------------------------------------------------------------------ activations, SE gates apart


def test_se_model_activations_match_and_the_gate_is_reported_apart(tmp_path):
    tr = make(tmp_path, "model.name=resnet18", "model.se=true", "model.width=0.125", "model.se_reduction=2",
              "monitor.activations_every=1", "monitor.every=1", "data.synthetic_train=64", "train.batch_size=8")
    shadow = Shadow(tr)
    shadow.run(1)
    tr.flush_window()
    got = {k: v for k, v in at(tr, 1).items() if k.startswith("act/")}
    want = block_figures(shadow.recompute(0)["acts"])
    assert set(got) == set(want)
    families = ("act/mean/", "act/std/", "act/zeros/", "act/dead/", "act/saturation/", "act/gate/", "act/gate_mean/")
    assert all(any(k.startswith(f) for k in got) for f in families)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, **F32), k
    assert "act/gate/layer1.0.se" in got and "act/zeros/layer1.0.se" in got  # the SE ReLU and its gate apart


def test_a_dead_se_relu_reads_dead_and_fires_the_alarm(tmp_path):
    tr = make(tmp_path, "model.name=resnet18", "model.se=true", "model.width=0.125", "model.se_reduction=2",
              "monitor.activations_every=1", "monitor.every=1", "data.synthetic_train=64", "train.batch_size=8")
    with torch.no_grad():
        se = tr.model.layer1[0].se
        se.fc1.weight.zero_()
        se.fc1.bias.fill_(-1.0)  # the SE ReLU's input is always negative: every unit dead
    Shadow(tr).run(1)
    tr.flush_window()
    got = at(tr, 1)
    assert got["act/dead/layer1.0.se"] == 1.0  # was 0.5: the Sigmoid gate counted as "alive"
    alarms = [e["message"] for e in tr.store.events_since() if e["kind"] == "dead_units"]
    assert any(m.startswith("layer1.0.se:") for m in alarms)


def test_tanh_saturates_within_one_percent_of_its_bounds():
    from engine.instruments import Instruments
    from engine.spec import MonitorSpec

    model = nn.Sequential(nn.Linear(1, 4), nn.Tanh())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.atanh(torch.tensor([0.985, -0.985, 0.995, 0.0])))
    inst = Instruments(model, MonitorSpec(activations_every=1), torch.device("cpu"))
    with inst.watch_activations(1):
        model(torch.zeros(3, 1))
    _, rows = inst.collect([])
    assert {n: v for _, n, v in rows}["act/gate"] == pytest.approx(0.25)  # only |y| = 0.995 is within 1% of ±1


# ------------------------------------------------------------------ every schedule's LR, set-lr under SWA


def closed_form(name: str, s: int, total: int = 16, lr: float = 0.1) -> float:
    """The LR of 0-based step `s`, from the schedules' textbook formulas (warmup 4 steps where named)."""
    if name == "constant":
        return lr * min((s + 1) / 4, 1.0)
    if name == "step":
        return lr * 0.1 ** sum(s >= m for m in (8, 12))
    if name == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * s / total))
    # onecycle: torch's own OneCycleLR (peak/25 up to the peak, down to peak/25/1e3 at the last step)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.25,
                                                final_div_factor=1e3)
    for _ in range(s):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]


@pytest.mark.parametrize("name,sets", [
    ("constant", ["schedule.warmup_epochs=0.5"]),
    ("step", ["schedule.milestones=[0.5, 0.75]", "schedule.gamma=0.1"]),
    ("cosine", []),
    ("onecycle", []),
])
def test_every_schedule_records_the_lr_each_step_trained_with(tmp_path, name, sets):
    tr = make(tmp_path, f"schedule.name={name}", "optim.lr=0.1", "train.epochs=2", "monitor.every=1", *sets)
    assert tr.fit() == "finished"
    recorded = [v for _, v in tr.store.series("lr")]
    assert len(recorded) == 16
    assert recorded == pytest.approx([closed_form(name, s) for s in range(16)], **LR)


def test_set_lr_under_swa_is_the_lr_the_steps_train_with_and_the_lr_metric(tmp_path):
    tr = make(tmp_path, "swa.enabled=true", "swa.lr=0.02", "swa.anneal_epochs=0", "optim.lr=0.1", "monitor.every=1")
    tr.start_swa("test")
    tr.handle_command(SetLR(lr=0.2))
    used: list[float] = []
    tr.optimizer.register_step_pre_hook(lambda opt, *_: used.append(opt.param_groups[0]["lr"]))
    shadow = Shadow(tr)
    shadow.run(3)
    tr.flush_window()
    assert used[-1] == pytest.approx(0.2, **LR)
    assert tr.store.last_values()["lr"] == pytest.approx(0.2, **LR)


# ------------------------------------------------------------------ ensembles: a 2-member vote


def test_a_two_member_vote_breaks_ties_by_mean_probability():
    from engine.evaluate import ensemble_evaluate

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 10, generator=g) * 3, torch.randn(300, 10, generator=g) * 3
    y = torch.randint(0, 10, (300,), generator=g)
    mean = (a.softmax(1) + b.softmax(1)) / 2
    want = []
    for i in range(300):  # longhand: most votes, a tie to the tied class with the highest mean probability
        votes = defaultdict(int)
        for lg in (a, b):
            votes[int(lg[i].argmax())] += 1
        top = max(votes.values())
        want.append(max((c for c, n in votes.items() if n == top), key=lambda c: float(mean[i, c])))
    acc = (torch.tensor(want) == y).double().mean().item()
    out = ensemble_evaluate([a, b], y)
    assert out["vote_acc"] == pytest.approx(acc, abs=1e-12)
    assert out["mean_prob_acc"] == pytest.approx((mean.argmax(1) == y).double().mean().item(), abs=1e-12)


def test_the_guide_s_vote_is_torch_mode_over_the_members_top1_a_tie_to_the_lowest_class():
    from engine.evaluate import ensemble_evaluate

    g = torch.Generator().manual_seed(1)
    for members in (2, 3, 4):
        logits = [torch.randn(400, 10, generator=g) * 3 for _ in range(members)]
        y = torch.randint(0, 10, (400,), generator=g)
        want = []
        for i in range(400):  # longhand: the most votes, a tie to the lowest class index
            votes = defaultdict(int)
            for lg in logits:
                votes[int(lg[i].argmax())] += 1
            top = max(votes.values())
            want.append(min(c for c, n in votes.items() if n == top))
        acc = (torch.tensor(want) == y).double().mean().item()
        # the guide's own line: final_pred = torch.mode(torch.stack(predictions), 0)[0]
        guide = torch.mode(torch.stack([lg.argmax(1) for lg in logits]), 0)[0]
        out = ensemble_evaluate(logits, y)
        assert out["mode_vote_acc"] == pytest.approx(acc, abs=1e-12) == (guide == y).double().mean().item()
        assert out["mode_vote_gain"] == pytest.approx(acc - max(m["acc"] for m in out["members"]), abs=1e-12)
    # two members that disagree: the majority vote follows the mean probability, the guide's vote the lower class
    sure_of_2, unsure_of_1 = torch.tensor([[0.0, 0.0, 9.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    out = ensemble_evaluate([sure_of_2, unsure_of_1], torch.tensor([2]))
    assert out["vote_acc"] == 1.0 and out["mode_vote_acc"] == 0.0


def test_a_three_member_vote_is_decided_by_votes_before_probabilities():
    from engine.evaluate import ensemble_evaluate

    sure = torch.tensor([[0.0, 20.0, 0.0]])  # one member is sure of class 1
    mild = torch.tensor([[1.0, 0.0, 0.0]])  # two members mildly prefer class 0
    out = ensemble_evaluate([sure, mild, mild], torch.tensor([0]))
    assert out["vote_acc"] == 1.0 and out["mean_prob_acc"] == 0.0


# ------------------------------------------------------------------ data statistics


def test_channel_stats_are_exact_in_float64():
    from engine.data import channel_stats

    g = torch.Generator().manual_seed(0)
    x = torch.randint(200, 256, (2000, 3, 32, 32), generator=g, dtype=torch.uint8)  # bright, low variance
    mean, std = channel_stats(x)
    ref = x.double() / 255
    assert mean == pytest.approx(ref.mean((0, 2, 3)).tolist(), rel=1e-12)
    assert std == pytest.approx(ref.std((0, 2, 3), correction=0).tolist(), rel=1e-9)  # float32 sums were 7% off


# ------------------------------------------------------------------ layer LRs and throughput


def test_layer_lrs_are_the_base_lr_times_each_multiplier(tmp_path):
    tr = make(tmp_path, "optim.lr=0.1", "optim.layer_lr={stem = 0.5, fc = 2.0}", "schedule.warmup_epochs=0.5")
    used: list[dict[str, float]] = []
    tr.optimizer.register_step_pre_hook(lambda opt, *_: used.append({g["layer"]: g["lr"] for g in opt.param_groups}))
    Shadow(tr).run(4)
    tr.flush_window()
    got = at(tr, 4)
    factor = closed_form("constant", 3) / 0.1  # step 4 of a 4-step warmup
    for layer, mult in used[-1].items():
        want = 0.1 * factor * {"stem": 0.5, "fc": 2.0}.get(layer, 1.0)
        assert got[f"lr/{layer}"] == pytest.approx(want, **LR) and mult == pytest.approx(want, **LR)
    assert got["lr"] == pytest.approx(0.1 * factor, **LR)  # the base LR, not a multiplied group's


def test_throughput_figures_agree_with_each_other(tmp_path):
    tr = make(tmp_path)
    Shadow(tr).run(4)
    tr.flush_window()
    got = at(tr, 4)
    # images/s = steps x batch / window time, step time = window time / steps: their product is the batch
    assert got["images_per_s"] * got["step_time_ms"] / 1000 == pytest.approx(32, rel=1e-9)
    assert 0 <= got["data_time_ms"] <= got["step_time_ms"]


# ------------------------------------------------------------------ evaluation


def test_test_and_val_figures_are_eval_mode_cross_entropy_and_accuracy(tmp_path):
    import torchvision.transforms.v2.functional as TF

    tr = make(tmp_path, "data.val_size=32", "train.label_smoothing=0.2")
    Shadow(tr).run(2)
    tr.evaluate_epoch()
    got = tr.store.last_values()
    d = tr.parts.data
    model = copy.deepcopy(tr.model).eval()
    for (loss, acc), x, y in ((("test_loss", "test_acc"), d.test_x, d.test_y), (("val_loss", "val_acc"), d.val_x, d.val_y)):
        with torch.no_grad():  # torchvision's Normalize with the training set's channel statistics
            logits = model(TF.normalize(x.float() / 255, list(d.mean), list(d.std)))
        assert got[loss] == pytest.approx(F.cross_entropy(logits, y).item(), **F32)  # no label smoothing
        assert got[acc] == pytest.approx((logits.argmax(1) == y).double().mean().item(), **EXACT)


def test_swa_figures_are_the_saved_average_on_test_and_val(tmp_path):
    """The SWA model's test and validation figures are those of checkpoints/swa.pt on the same splits."""
    import torchvision.transforms.v2.functional as TF

    from engine import checkpoint as ckpt

    tr = make(tmp_path, "data.val_size=32", "swa.enabled=true", "swa.start=1", "swa.anneal_epochs=0",
              "train.epochs=2")
    assert tr.fit() == "finished"
    got = tr.store.last_values()
    d = tr.parts.data
    model = copy.deepcopy(tr.model).eval()
    model.load_state_dict(ckpt.load(tr.store.checkpoints / "swa.pt")["model"])
    for (loss, acc), x, y in ((("swa_test_loss", "swa_test_acc"), d.test_x, d.test_y),
                              (("swa_val_loss", "swa_val_acc"), d.val_x, d.val_y)):
        with torch.no_grad():
            logits = model(TF.normalize(x.float() / 255, list(d.mean), list(d.std)))
        assert got[loss] == pytest.approx(F.cross_entropy(logits, y).item(), **F32)
        assert got[acc] == pytest.approx((logits.argmax(1) == y).double().mean().item(), **EXACT)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="peak device memory and the fp16 loss scale exist on CUDA only")
def test_memory_gb_and_loss_scale_on_cuda(tmp_path):
    tr = make(tmp_path, "train.device=cuda", "train.amp=fp16")
    Shadow(tr).run(4)
    tr.flush_window()
    got = at(tr, 4)
    assert got["memory_gb"] == pytest.approx(torch.cuda.max_memory_allocated() / 2**30, rel=1e-9)
    assert got["loss_scale"] == tr.parts.scaler.get_scale()


def test_every_metric_in_the_readme_table_is_checked_here():
    """The README's "What the engine measures" table and this module stay in step."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.split("## What the engine measures", 1)[1].split("\n\n## ", 1)[0]
    rows = [line.split(" | ", 1)[0] for line in table.splitlines()
            if line.startswith("| `") and not line.startswith("| `system/")]  # host samples: tests/test_system.py
    names = {re.sub(r"(<[a-z]+>|NN|p10,.*)$", "", n) for row in rows for n in re.findall(r"`([^`]+)`", row)}
    here = Path(__file__).read_text(encoding="utf-8")
    missing = sorted(n for n in names if f'"{n}' not in here and f"'{n}" not in here)
    assert not missing, f"README metrics with no independent check in tests/test_numbers.py: {missing}"
