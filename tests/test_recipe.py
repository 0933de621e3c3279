"""airbench's techniques as spec options, each doing what it says on CPU: the whitening stem,
dirac init and BatchNorm options, the BN/bias LR multiplier, lookahead, alternating flip, weighted TTA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.evaluate import tta_evaluate
from engine.models.whitening import WhiteningConv
from engine.optim import base_lr, set_base_lr
from engine.spec import load_spec
from engine.store import Run
from engine.train import Trainer
from tests.ddp_util import rank_env, two_ranks_against_one, without_batchnorm
from tests.test_instruments import NoHostSync

BASE = ["model.name=fastnet", "model.width=0.25", "data.synthetic_train=256", "data.synthetic_test=64",
        "train.batch_size=32", "train.threads=1", "train.epochs=2", "optim.nesterov=true"]
AIRBENCH = ["model.whiten=2", "model.whiten_bias_epochs=1", "model.init=dirac", "model.bn_weight_frozen=true",
            "model.bn_eps=1e-12", "model.bn_momentum=0.4", "optim.bn_bias_lr_mult=64", "optim.no_decay_bn_bias=false",
            "train.lookahead_every=5", "augment.alternate_flip=true", "evaluate.tta=true", 'evaluate.tta_views=["airbench"]']


def make(*sets: str, store=None) -> Trainer:
    spec = load_spec(None, [*BASE, *sets])
    return Trainer(spec, Run.create(store, spec) if store else None, log=lambda _m: None)


def test_the_whitening_stem_whitens_the_training_patches_and_its_bias_stops_after_n_epochs():
    tr = make("model.whiten=2", "model.whiten_bias_epochs=1")
    layer = tr.model.stem[0]
    assert isinstance(layer, WhiteningConv) and not layer.weight.requires_grad and layer.bias.requires_grad
    images = tr.augment.eval(tr.train_loader.x[:5000])
    out = F.conv2d(images, layer.weight[:12]).permute(1, 0, 2, 3).reshape(12, -1).double()
    cov = out @ out.T / out.shape[1]
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=0.05)  # unit variance, uncorrelated
    group = next(g for g in tr.optimizer.param_groups if g["name"] == "whiten")
    assert group["params"] == [layer.bias]
    for xb, yb, _ in tr.train_loader.epoch_batches(0):
        tr.train_step(xb, yb)
    assert group["lr"] == 0.0 and tr.optimizer.param_groups[0]["lr"] > 0  # frozen by its LR, not requires_grad
    before = layer.bias.detach().clone()
    for xb, yb, _ in tr.train_loader.epoch_batches(1):
        tr.train_step(xb, yb)
    assert torch.equal(layer.bias, before) and layer.bias.requires_grad


def test_the_whitening_sample_is_a_seeded_draw_over_every_class_of_a_class_sorted_set():
    """A folder dataset is stored class by class: the first 5,000 images would all be one class."""
    from engine.init_from_data import whitening_sample

    labels = torch.arange(10).repeat_interleave(1000)  # 10,000 images, sorted by class
    sample = whitening_sample(len(labels), seed=3)
    counts = torch.bincount(labels[sample], minlength=10)
    assert len(sample) == 5000 and len(set(sample.tolist())) == 5000
    assert (counts > 400).all() and (counts < 600).all(), counts  # every class, about 500 each
    assert torch.equal(sample, whitening_sample(len(labels), seed=3))  # every rank draws the same
    assert not torch.equal(sample, whitening_sample(len(labels), seed=4))


def test_the_whitening_filters_come_from_the_seeded_sample_not_the_first_images(monkeypatch):
    import engine.init_from_data as init
    from engine.models.whitening import init_whitening

    monkeypatch.setattr(init, "WHITEN_IMAGES", 64)  # of 256 images, so the draw is a real subset
    tr = make("model.whiten=2", "train.seed=5")
    x = tr.train_loader.x

    def filters(images: torch.Tensor) -> torch.Tensor:
        m = make("model.whiten=2", "train.seed=5").model
        init_whitening(m, tr.augment.eval(images))
        return m.stem[0].weight

    built = tr.model.stem[0].weight
    assert torch.equal(built, filters(x[init.whitening_sample(len(x), 5, 64)]))
    assert not torch.allclose(built, filters(x[:64]))
    assert torch.equal(built, make("model.whiten=2", "train.seed=5").model.stem[0].weight)


def test_whitening_goes_in_front_of_any_model_and_it_still_trains():
    tr = make("model.name=resnet18", "model.width=0.125", "model.whiten=2", "train.epochs=1")
    assert isinstance(tr.model.stem[0][0], WhiteningConv)
    xb, yb, _ = next(tr.train_loader.epoch_batches(0))
    tr.train_step(xb, yb)
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_dirac_init_passes_the_input_through_and_bn_options_hold():
    tr = make("model.init=dirac", "model.bn_weight_frozen=true", "model.bn_eps=1e-12", "model.bn_momentum=0.4")
    conv = tr.model.block2[4]  # a 3x3 conv with as many outputs as inputs
    x = torch.randn(2, conv.in_channels, 8, 8)
    assert torch.allclose(conv(x), x, atol=1e-6)
    bns = [m for m in tr.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-12 and m.momentum == 0.4 and not m.weight.requires_grad for m in bns)
    for xb, yb, _ in tr.train_loader.epoch_batches(0):
        tr.train_step(xb, yb)
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in bns)


def test_bn_and_bias_parameters_train_at_the_multiplied_lr_with_the_same_decay_per_step():
    tr = make("optim.bn_bias_lr_mult=64", "optim.no_decay_bn_bias=false", "optim.lr=0.1", "optim.weight_decay=5e-3")
    g0, scaled = tr.optimizer.param_groups[0], tr.optimizer.param_groups[1]
    assert all(p.ndim > 1 for p in g0["params"]) and all(p.ndim <= 1 for p in scaled["params"])
    assert scaled["lr"] == pytest.approx(64 * g0["lr"])
    assert scaled["lr"] * scaled["weight_decay"] == pytest.approx(g0["lr"] * g0["weight_decay"])
    set_base_lr(tr.optimizer, tr.scheduler, 0.05)  # a live LR change keeps the ratio; the LR metric reads group 0
    assert scaled["lr"] == pytest.approx(64 * g0["lr"]) and base_lr(tr.optimizer, tr.scheduler) == pytest.approx(0.05)


def test_lookahead_moves_the_weights_to_their_ema_without_a_host_sync_and_is_checkpointed(tmp_path):
    tr = make("train.lookahead_every=2", "train.epochs=1", store=tmp_path)
    la = tr.lookahead
    data = list(tr.train_loader.epoch_batches(0))
    start = [t.clone() for t in la.ema]
    with NoHostSync():
        tr.train_step(*data[0][:2])
        after_one = [t.clone() for t in la.live]
        assert all(torch.equal(a, b) for a, b in zip(la.ema, start))  # off the cadence: nothing moves
        tr.train_step(*data[1][:2])
    assert all(torch.equal(live, ema) for live, ema in zip(la.live, la.ema))  # on the cadence: live = EMA
    assert any(not torch.equal(a, b) for a, b in zip(after_one, la.live))
    tr.save("last")
    tr.writer.wait()  # written off the training thread
    saved = torch.load(tr.store.checkpoints / "last.pt", weights_only=False)
    assert all(torch.equal(s, e) for s, e in zip(saved["lookahead"], la.ema))
    again = Trainer(tr.spec, tr.store, log=lambda _m: None)  # a resumed run continues the same EMA
    again.resume()
    assert again.step == 2 and all(torch.equal(a, b) for a, b in zip(again.lookahead.ema, la.ema))


def test_lookahead_follows_airbench_formula_and_ends_on_the_ema():
    tr = make("train.lookahead_every=1", "train.epochs=1", "optim.lr=0.01")
    la = tr.lookahead
    data = list(tr.train_loader.epoch_batches(0))
    ema0 = [t.clone() for t in la.ema]
    live_before_la = {}
    orig = la.step
    la.step = lambda s: (live_before_la.__setitem__(s, [t.clone() for t in la.live]), orig(s))[1]
    tr.train_step(*data[0][:2])
    w = 1 - 0.95 * (1 / tr.total_steps) ** 3
    expected = [e + w * (lv - e) for e, lv in zip(ema0, live_before_la[1])]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(la.live, expected))
    for xb, yb, _ in data[1:]:
        tr.train_step(xb, yb)
    assert tr.step == tr.total_steps
    assert all(torch.equal(live, ema) for live, ema in zip(la.live, la.ema))


def test_alternating_flip_flips_each_image_on_alternate_epochs_and_the_random_flip_is_off():
    tr = make("augment.alternate_flip=true")
    loader = tr.train_loader

    def seen(epoch):
        out = torch.empty_like(loader.x)
        for xb, _, idx in loader.epoch_batches(epoch):
            out[idx] = xb
        return out, torch.cat([idx for _, _, idx in loader.epoch_batches(epoch)])

    (e0, i0), (e1, _), (e2, _) = seen(0), seen(1), seen(2)
    i0 = i0.sort().values
    flipped0 = (e0[i0] != loader.x[i0]).flatten(1).any(1)
    assert 0.3 < flipped0.float().mean() < 0.7
    assert torch.equal(e1[i0], e0[i0].flip(-1)) and torch.equal(e2[i0], e0[i0])
    assert tr.augment.spec.flip == 0.0


def test_airbench_tta_weights_its_six_views_like_airbench():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5)).eval()
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    y = torch.randint(0, 5, (16,))
    tr = make()
    res = tta_evaluate(model, x, y, tr.augment, views=["airbench"], return_logits=True)
    xf = tr.augment.eval(x)
    with torch.no_grad():  # airbench's infer_mirror_translate, written out
        mirror = lambda v: 0.5 * model(v) + 0.5 * model(v.flip(-1))  # noqa: E731
        pad = F.pad(xf, (1,) * 4, "reflect")
        expected = 0.5 * mirror(xf) + 0.5 * torch.stack([mirror(pad[..., 0:8, 0:8]), mirror(pad[..., 2:10, 2:10])]).mean(0)
    assert res["n_views"] == 6
    assert torch.allclose(res["_logits"].float(), expected, atol=1e-5)


@pytest.mark.slow
def test_a_cpu_fastnet_with_every_airbench_option_trains_at_least_as_well_as_without():
    sets = ["data.synthetic_train=768", "data.synthetic_test=512", "train.batch_size=64", "train.epochs=2",
            "optim.lr=0.2", "schedule.name=onecycle", "train.label_smoothing=0.2", "augment.translate=2",
            "monitor.every=1000", "monitor.grad_flow_every=0", "monitor.activations_every=0",
            "monitor.difficulty_every=0"]
    accs = []
    for extra in ([], AIRBENCH):
        tr = make(*sets, *extra)
        tr.fit()
        accs.append(tr.eval_model().acc)
    assert accs[1] >= accs[0], accs


DDP = ["model.name=fastnet", "model.width=0.125", "data.synthetic_train=512", "data.synthetic_test=64",
       "train.batch_size=64", "train.epochs=2", "monitor.every=1", "train.threads=1", "model.whiten=2",
       "model.whiten_bias_epochs=1", "model.init=dirac", "optim.bn_bias_lr_mult=64", "train.lookahead_every=3",
       "augment.alternate_flip=true"]


def _ddp_rank(rank: int, world: int, port: int, run_dir: str) -> None:
    rank_env(rank, world, port)
    without_batchnorm()  # BatchNorm is the one per-rank effect: without it two ranks match one process
    from engine.runtime import distributed as D

    ctx = D.init(D.env_context(), torch.device("cpu"))
    spec = load_spec(None, DDP)
    assert Trainer(spec, Run(run_dir) if ctx.is_store else None, log=lambda _m: None, dist=ctx).fit() == "finished"
    ctx.barrier()
    D.shutdown(ctx)
    D.exit_rank(0)  # as the worker ends a rank: never in gloo's teardown at interpreter exit


@pytest.mark.slow
def test_two_processes_with_the_airbench_options_match_one(tmp_path, monkeypatch):
    """Whitening from the data before the DDP wrap, the alternating flip by global image index and
    lookahead give two ranks exactly one process's run."""
    single, multi = two_ranks_against_one(tmp_path, load_spec(None, DDP), _ddp_rank, monkeypatch)
    a, b = single.series("train_loss"), multi.series("train_loss")
    assert len(a) == len(b) == 16 and max(abs(x - y) for (_, x), (_, y) in zip(a, b)) < 1e-5


def test_swa_keeps_the_bn_bias_scale_and_the_whitening_bias_frozen():
    tr = make("optim.bn_bias_lr_mult=64", "model.whiten=2", "model.whiten_bias_epochs=1", "swa.enabled=true",
              "swa.start=2", "swa.anneal_epochs=0", "train.epochs=2")
    tr.fit()
    by_name = {g["name"]: g for g in tr.optimizer.param_groups}
    plain, scaled = tr.optimizer.param_groups[0], by_name["default/no_decay/bn_bias"]
    assert scaled["lr"] == pytest.approx(64 * plain["lr"]) and plain["lr"] == pytest.approx(tr.spec.swa.lr)
    assert by_name["whiten"]["lr"] == 0.0


def test_a_whitening_stem_that_leaves_too_small_an_image_is_a_spec_error():
    from engine.spec import SpecError

    with pytest.raises(SpecError, match="model.whiten"):
        load_spec(None, ["model.whiten=2", "data.image_size=8"])
    load_spec(None, ["model.whiten=2", "data.image_size=9"])
