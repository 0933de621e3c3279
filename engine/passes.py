"""Finishing passes on a run: temperature calibration, TTA, SWA, ensembles, and the LR range test.

Each pass works in one of two ways:

* offline, on a finished (or stopped, crashed) run: a `Trainer` is built from the run's spec.toml
  (the same data, split and normalization), a checkpoint is loaded (best, falling back to last),
  and the pass is computed in this process;
* live, inside the worker that owns a running or paused run: the worker hands its `Trainer` to
  `run_pass(run, kind, trainer=...)` between two steps, and the pass uses the in-memory model
  (random views draw under `torch.random.fork_rng`, so the run's own RNG stream is untouched).

Either way the result goes to the run store (`run.add_result(kind, data, ...)`, plus an event) in
the shapes the reports read:

    calibrate  {before: {nll, ece, acc}, after: {nll, ece, acc}, temperature,
                reliability: {before: [{lower, upper, conf, acc, count}], after: [...]}, ...}
    tta        {base_acc, tta_acc, delta, views: {name: acc}, combine, ...}
    swa        {base_acc, swa_acc, delta, test_acc, test_loss, epochs, ...}
    ensemble   {members: [{run, acc}], vote_acc, mean_prob_acc, best_member_acc, gain, ...}
    lr_find    {suggested_lr, method, points: [{lr, loss, smooth}], ...}
    confusion  {classes, matrix, per_class_acc}     (stored with calibrate and tta)

Only the engine is imported here (no UI packages).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .contracts import (RESULT_MODELS, CalibrationResult, ConfusionResult, EnsembleResult, LRFindResult, ResultModel,
                        SWAResult, TTAResult)
from .evaluate import autocast_for, calibrate, confusion, ensemble_evaluate, predict, tta_evaluate
from .spec import RunSpec
from .store import Run
from .train import StopRun, Trainer

__all__ = [
    "PASS_KINDS",
    "PassError",
    "run_pass",
    "pass_summary",
    "swa_pass",
    "lr_find",
    "ensemble_runs",
    "load_weights",
]

PASS_KINDS = ("calibrate", "tta", "swa", "confusion")

_OPTIONS = {
    "calibrate": {"checkpoint", "bins"},
    "tta": {"checkpoint", "views", "translate", "random_views", "combine", "seed"},
    "swa": {"epochs"},
    "confusion": {"checkpoint"},
}

Log = Callable[[str], None]


class PassError(Exception):
    """A pass that cannot run on this run (no validation split, no checkpoint...); the message says why."""


def _quiet(_msg: str) -> None:
    pass


# ------------------------------------------------------------------------------- checkpoints

_FALLBACK = {"best": ("best", "last"), "last": ("last", "best"), "swa": ("swa",)}


def load_weights(model: torch.nn.Module, run: Run, checkpoint: str = "best",
                 device: torch.device | str = "cpu") -> tuple[str, dict[str, Any]]:
    """Load a run's checkpoint ("best" falls back to "last" and vice versa; "swa"; or a file name in
    checkpoints/) into `model`; returns (file name used, the checkpoint dict)."""
    name = checkpoint[:-3] if checkpoint.endswith(".pt") else checkpoint
    kinds = _FALLBACK.get(name, (name,))
    problems = []
    for kind in kinds:
        path = ckpt.path_for(run.checkpoints, kind)
        if not path.exists() and not ckpt.previous(path).exists():
            problems.append(f"no {path.name}")
            continue
        try:
            state, used, _ = ckpt.load_latest_good(path, device)
        except ckpt.CheckpointError as exc:
            problems.append(str(exc))
            continue
        if "model" not in state:
            problems.append(f"{used.name} holds no model weights")
            continue
        model.load_state_dict(state["model"])
        return used.name, state
    raise PassError(f"run {run.run_id}: no usable checkpoint for {checkpoint!r} in {run.checkpoints} "
                    f"({'; '.join(problems)})")


# ------------------------------------------------------------------------------- the runner


def _build_trainer(spec: RunSpec, log: Log | None) -> Trainer:
    return Trainer(spec, None, log or _quiet)


def _check_options(kind: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS[kind])
    if unknown:
        raise PassError(f"{kind}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(_OPTIONS[kind]))}")


def run_pass(run: Run, kind: str, trainer: Trainer | None = None, *, log: Log | None = None,
             **options: Any) -> ResultModel | dict[str, Any]:
    """Compute a finishing pass on `run`, store it (result + event) and return the typed result.

    kind: calibrate | tta | swa | confusion.
    trainer: the live worker's Trainer (the pass then uses its in-memory model, or, when a
      `checkpoint` option is given, a copy of it loaded from that checkpoint); None: build one from
      the run's spec and load `checkpoint` (default "best", falling back to "last").
    options: calibrate: checkpoint, bins; tta: checkpoint, views, translate, random_views, combine,
      seed (defaults from the spec's [evaluate]); swa: epochs; confusion: checkpoint.
    For a live trainer, kind "swa" starts weight averaging now (the worker evaluates and stores the
    SWA model when training ends); offline it is `swa_pass`.
    """
    if kind not in PASS_KINDS:
        raise PassError(f"unknown pass {kind!r}; valid: {', '.join(PASS_KINDS)}")
    options = {k: v for k, v in options.items() if v is not None}
    _check_options(kind, options)
    if kind == "swa":
        if trainer is not None:
            return _live_swa(trainer)
        return swa_pass(run, epochs=options.get("epochs"), log=log)

    spec = trainer.spec if trainer is not None else run.spec()
    if kind == "calibrate" and spec.data.val_size == 0:
        raise PassError(f"run {run.run_id} has no validation split to fit a temperature on: "
                        "calibration needs one (set data.val_size > 0 and train a new run)")
    checkpoint = options.get("checkpoint")
    if trainer is not None:
        t = trainer
        model = t.model
        ck_name, step = "live", t.step
        if checkpoint:
            model = copy.deepcopy(t.model)
            ck_name, state = load_weights(model, run, checkpoint, t.device)
            step = int(state.get("step", t.step))
    else:
        t = _build_trainer(spec, log)
        model = t.model
        ck_name, state = load_weights(model, run, checkpoint or "best", t.device)
        step = int(state.get("step", 0))

    ev = spec.evaluate
    bs = spec.train.eval_batch_size
    if kind == "calibrate":
        val = predict(model, t.val_x, bs, t.augment.eval, t.amp_dtype, t.channels_last)
        test = predict(model, t.test_x, bs, t.augment.eval, t.amp_dtype, t.channels_last)
        data = calibrate(val, t.val_y, test, t.test_y, bins=int(options.get("bins", ev.ece_bins)))
        base_logits = test
        message = (f"temperature {data['temperature']:.3f} on {ck_name}: ECE {data['before']['ece']:.2%} -> "
                   f"{data['after']['ece']:.2%}, NLL {data['before']['nll']:.4f} -> {data['after']['nll']:.4f}")
    elif kind == "tta":
        views = options.get("views", ev.tta_views)
        if isinstance(views, str):
            views = [v.strip() for v in views.split(",") if v.strip()]
        data = tta_evaluate(model, t.test_x, t.test_y, t.augment, views=views,
                            translate=int(options.get("translate", ev.tta_translate)),
                            random_views=int(options.get("random_views", ev.tta_random_views)),
                            combine=options.get("combine", ev.tta_combine), seed=int(options.get("seed", spec.train.seed)),
                            batch_size=bs, amp_dtype=t.amp_dtype, channels_last=t.channels_last,
                            bins=ev.ece_bins, return_logits=True)
        data.pop("_logits")
        base_logits = data.pop("_base_logits")
        message = (f"TTA on {ck_name} ({data['n_views']} views, {data['combine']}): {data['base_acc']:.2%} -> "
                   f"{data['tta_acc']:.2%} ({data['delta']:+.2%})")
    else:  # confusion
        base_logits = predict(model, t.test_x, bs, t.augment.eval, t.amp_dtype, t.channels_last)
        data = None
        message = ""
    conf = ConfusionResult(**confusion(base_logits, t.test_y, list(t.data.classes)), checkpoint=ck_name)
    run.add_result(conf, step=step, checkpoint=ck_name)
    if data is None:
        return conf
    result = RESULT_MODELS[kind](**data, checkpoint=ck_name, step=step)
    run.add_result(result, step=step, checkpoint=ck_name)
    run.add_event("calibrated" if kind == "calibrate" else kind, message, step=step, checkpoint=ck_name)
    (log or _quiet)(message)
    return result


def pass_summary(result: ResultModel | dict[str, Any]) -> str:
    """One line for a command's reply (the worker acks a pass command with this)."""
    if isinstance(result, CalibrationResult):
        return (f"T={result.temperature:.3f}: ECE {result.before.ece:.2%} -> {result.after.ece:.2%}, "
                f"NLL {result.before.nll:.4f} -> {result.after.nll:.4f}")
    if isinstance(result, TTAResult):
        return f"TTA {result.base_acc:.2%} -> {result.tta_acc:.2%} ({result.delta:+.2%}, {result.n_views} views)"
    if isinstance(result, SWAResult):
        return f"SWA {result.base_acc:.2%} -> {result.swa_acc:.2%} ({result.delta:+.2%}) after {result.epochs} epochs"
    if isinstance(result, ConfusionResult):
        accs = [a for a in result.per_class_acc if a is not None]
        return f"confusion matrix over {len(result.classes)} classes (mean class acc {sum(accs) / max(len(accs), 1):.2%})"
    if isinstance(result, dict):  # the live SWA start
        return result.get("message", "SWA started")
    return "done"


# ------------------------------------------------------------------------------------- SWA


def _live_swa(trainer: Trainer) -> dict[str, Any]:
    already = trainer.swa_model is not None
    trainer.start_swa("command")
    msg = ("SWA was already averaging" if already else f"SWA started at epoch {trainer.epoch + 1}") + \
        "; the averaged model is evaluated and stored when training ends"
    return {"started": not already, "epoch": trainer.epoch + 1, "step": trainer.step, "message": msg,
            "swa_lr": trainer.spec.swa.lr}


def _update_bn(t: Trainer, model: torch.nn.Module) -> None:
    """Recompute BN statistics on un-augmented train data, under the run's AMP and memory format."""
    from torch.optim.swa_utils import update_bn

    def batches():
        for xb, _, _ in t.train_loader.epoch_batches(0):
            x = t.augment.eval(xb)
            yield x.contiguous(memory_format=torch.channels_last) if t.channels_last else x

    with autocast_for(t.device, t.amp_dtype):
        update_bn(batches(), model, device=t.device)


def swa_pass(run: Run, epochs: int | None = None, checkpoint: str = "last", log: Log | None = None) -> SWAResult:
    """SWA after the fact: continue a finished/stopped run from its last checkpoint for `epochs` more
    epochs (default swa.anneal_epochs + 2) with SWALR annealing to swa.lr, averaging the weights at
    the end of each epoch; recompute BN, evaluate base vs SWA on the test set, save checkpoints/swa.pt.

    The run's curves only gain `swa_test_acc` / `swa_test_loss` rows (at the step the SWA model
    reached); the result "swa" holds {base_acc, base_loss, swa_acc, delta, test_acc, test_loss,
    epochs, ...}.
    """
    spec = run.spec()
    epochs = max(int(epochs if epochs is not None else spec.swa.anneal_epochs + 2), 1)
    log = log or _quiet
    t = _build_trainer(spec, log)
    name = checkpoint[:-3] if checkpoint.endswith(".pt") else checkpoint
    state, used = None, None
    for kind in _FALLBACK.get(name, (name,)):
        path = ckpt.path_for(run.checkpoints, kind)
        try:
            state, used, _ = ckpt.load_latest_good(path, t.device)
        except ckpt.CheckpointError:
            continue
        if "optimizer" in state:
            break
        state = None
    if state is None:
        raise PassError(f"run {run.run_id}: no full checkpoint (last.pt or best.pt with optimizer state) "
                        f"in {run.checkpoints} to continue from")
    t.load_state(state)
    base_step = t.step
    base = t.eval_model()
    t.start_swa("swa pass")
    assert t.swa_model is not None
    every = spec.monitor.every
    first_epoch = t.epoch + (1 if t.batch_in_epoch else 0)
    try:
        for i in range(epochs):
            t.epoch = first_epoch + i
            for xb, yb, _ in t.train_loader.epoch_batches(t.epoch):
                t.train_step(xb, yb)
                if t.step % every == 0:
                    t.flush_window()
            t.flush_window()
            t.swa_model.update_parameters(t.model)
            log(f"swa pass: epoch {i + 1}/{epochs} done (lr {t.current_lr():.4g})")
    except StopRun as stop:
        raise PassError(f"SWA pass on {run.run_id} stopped: {stop.reason}") from None
    t.epoch = first_epoch + epochs
    _update_bn(t, t.swa_model)
    res = t.eval_model(t.swa_model.module)
    path = ckpt.path_for(run.checkpoints, "swa")
    ckpt.save_atomic({"model": t.swa_model.module.state_dict(), "step": t.step, "base_step": base_step,
                      "epochs": epochs, "source": used.name}, path)
    epoch_f = t.step / max(t.steps_per_epoch, 1)
    run.add_metrics([(t.step, epoch_f, "swa_test_acc", res.acc), (t.step, epoch_f, "swa_test_loss", res.loss)])
    result = SWAResult(base_acc=base.acc, base_loss=base.loss, swa_acc=res.acc, delta=res.acc - base.acc,
                       test_acc=res.acc, test_loss=res.loss, epochs=epochs, lr=spec.swa.lr,
                       anneal_epochs=spec.swa.anneal_epochs, anneal_strategy=spec.swa.anneal_strategy,
                       base_step=base_step, step=t.step, source=used.name, checkpoint=path.name)
    run.add_result(result, step=t.step, checkpoint=path.name)
    message = (f"SWA pass ({epochs} epochs from {used.name}, swa lr {spec.swa.lr:g}): test acc {base.acc:.2%} -> "
               f"{res.acc:.2%} ({res.acc - base.acc:+.2%})")
    run.add_event("swa_pass", message, step=t.step, checkpoint=path.name)
    log(message)
    return result


# ---------------------------------------------------------------------------------- LR finder


def _suggest(lrs: list[float], smooth: list[float]) -> tuple[float, str, float, float | None]:
    """(suggested lr, method, min-loss lr, steepest lr or None).

    steepest: the most negative slope of the smoothed loss against log10(lr), searched up to the
    minimum (the fastai heuristic); with fewer than 3 points before the minimum: min-loss lr / 10.
    """
    import numpy as np

    imin = int(np.argmin(smooth))
    min_lr = lrs[imin]
    steepest = None
    if imin >= 2:
        x = np.log10(np.asarray(lrs[: imin + 1]))
        g = np.gradient(np.asarray(smooth[: imin + 1]), x)
        j = int(np.argmin(g))
        if g[j] < 0:
            steepest = float(lrs[j])
    if steepest is not None:
        return steepest, "steepest", min_lr, steepest
    return min_lr / 10, "min_loss/10", min_lr, None


def lr_find(spec: RunSpec, steps: int = 200, start_lr: float = 1e-6, end_lr: float = 10.0, run: Run | None = None,
            beta: float = 0.98, diverge: float = 4.0, log: Log | None = None) -> LRFindResult:
    """LR range test: from a freshly built model, raise the LR exponentially from start_lr to end_lr
    over `steps` optimizer steps (constant schedule, looping the train loader), recording the loss
    and its bias-corrected exponential moving average (beta). Stops early when the smoothed loss
    exceeds `diverge` x its best, or the loss is not finite.

    Returns {suggested_lr, method ("steepest": steepest descent of the smoothed loss before its
    minimum; "min_loss/10" as the fallback), min_loss_lr, steepest_lr, points: [{step, lr, loss,
    smooth}], start_lr, end_lr, steps, stopped_early, stop_reason}. With `run`, also stores metrics
    "lrfind/loss", "lrfind/smooth", "lrfind/lr" by step, a result "lr_find" and an event.
    """
    if steps < 2:
        raise PassError(f"lr_find needs at least 2 steps, got {steps}")
    if not (0 < start_lr < end_lr):
        raise PassError(f"lr_find needs 0 < start_lr < end_lr, got {start_lr:g} and {end_lr:g}")
    log = log or _quiet
    spec = spec.model_copy(deep=True)
    spec.schedule.name = "constant"
    spec.schedule.warmup_epochs = 0.0
    spec.swa.enabled = False
    t = _build_trainer(spec, log)
    opt, scaler, model = t.optimizer, t.scaler, t.model
    gamma = (end_lr / start_lr) ** (1 / (steps - 1))
    smoothing = spec.train.label_smoothing
    clip = spec.train.grad_clip
    model.train()

    points: list[dict[str, float]] = []
    avg, best = 0.0, math.inf
    stop_reason = ""
    pending: list[tuple[int, float, torch.Tensor]] = []
    check_every = 8  # losses are read in one transfer every few steps, not one .item() per step
    it = t.train_loader.forever()
    for i in range(steps):
        lr = start_lr * gamma**i
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        xb, yb = next(it)
        x = t.augment.train(xb)
        if t.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(t.device, t.amp_dtype):
            loss = F.cross_entropy(model(x).float(), yb, label_smoothing=smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(opt)
        scaler.update()
        pending.append((i, lr, loss.detach()))
        if len(pending) < check_every and i < steps - 1:
            continue
        values = torch.stack([p[2] for p in pending]).float().cpu().tolist()
        for (step, step_lr, _), value in zip(pending, values):
            if not math.isfinite(value):
                stop_reason = f"loss not finite at lr {step_lr:.3g}"
                break
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (step + 1))
            points.append({"step": step + 1, "lr": step_lr, "loss": value, "smooth": smooth})
            best = min(best, smooth)
            if step > 0 and smooth > diverge * best:
                stop_reason = f"smoothed loss {smooth:.3g} > {diverge:g} x best {best:.3g} at lr {step_lr:.3g}"
                break
        pending = []
        if stop_reason:
            break
    if len(points) < 2:
        raise PassError(f"lr_find diverged at once ({stop_reason or 'no finite loss'}): lower start_lr")
    lrs = [p["lr"] for p in points]
    suggested, method, min_lr, steepest = _suggest(lrs, [p["smooth"] for p in points])
    result = LRFindResult(suggested_lr=suggested, method=method, min_loss_lr=min_lr, steepest_lr=steepest,
                          points=points, start_lr=start_lr, end_lr=end_lr, steps=steps,
                          stopped_early=bool(stop_reason), stop_reason=stop_reason, optimizer=spec.optim.name)
    if run is not None:
        spe = max(t.steps_per_epoch, 1)
        rows = []
        for p in points:
            e = p["step"] / spe
            rows += [(p["step"], e, "lrfind/loss", p["loss"]), (p["step"], e, "lrfind/smooth", p["smooth"]),
                     (p["step"], e, "lrfind/lr", p["lr"])]
        run.add_metrics(rows)
        last = points[-1]["step"]
        run.add_result(result, step=last)
        run.add_event("lr_find", f"LR range test {start_lr:g}..{end_lr:g} over {len(points)} steps: suggested lr "
                      f"{suggested:.3g} ({method}){'; ' + stop_reason if stop_reason else ''}", step=last)
    log(f"lr_find: suggested lr {suggested:.3g} ({method})")
    return result


# ---------------------------------------------------------------------------------- ensembles


def _same_data(a: RunSpec, b: RunSpec) -> str | None:
    """Why two specs cannot share a test set (cheap spec-level check before any data is loaded)."""
    da, db = a.data, b.data
    if da.source != db.source:
        return f"data.source {da.source} vs {db.source}"
    if da.source == "synthetic":
        for key in ("synthetic_test", "synthetic_classes", "image_size"):
            if getattr(da, key) != getattr(db, key):
                return f"data.{key} {getattr(da, key)} vs {getattr(db, key)}"
        if a.train.seed != b.train.seed:
            return f"synthetic data made with train.seed {a.train.seed} vs {b.train.seed}"
    return None


def ensemble_runs(runs: list[Run], checkpoint: str = "best", store: bool = True,
                  log: Log | None = None) -> EnsembleResult:
    """Ensemble several runs' models on the first run's test set (they must share data and classes).

    Each run's model is rebuilt from its spec.toml (with its own normalization) and `checkpoint`
    ("best" falls back to "last"); returns `ensemble_evaluate`'s dict with members named by run id,
    plus "checkpoints". With `store`, the result "ensemble" and an event go to the first run.
    """
    if len(runs) < 2:
        raise PassError("an ensemble needs at least two runs")
    ids = [r.run_id for r in runs]
    paths = [r.path.resolve() for r in runs]  # ids are per runs dir: two dirs may hold the same id
    if len(set(paths)) != len(paths):
        raise PassError(f"the same run is listed twice: {', '.join(ids)}")
    specs = [r.spec() for r in runs]
    for r, s in zip(runs[1:], specs[1:]):
        why = _same_data(specs[0], s)
        if why:
            raise PassError(f"runs {runs[0].run_id} and {r.run_id} do not share a test set ({why}): "
                            "an ensemble needs runs trained on the same data and classes")
    logits, used = [], []
    ref_x = ref_y = classes = None
    for r, s in zip(runs, specs):
        t = _build_trainer(s, log)
        if ref_x is None:
            ref_x, ref_y, classes = t.test_x, t.test_y, list(t.data.classes)
        elif list(t.data.classes) != classes or t.test_x.shape != ref_x.shape or not torch.equal(t.test_y, ref_y) \
                or not torch.equal(t.test_x, ref_x):
            raise PassError(f"runs {runs[0].run_id} and {r.run_id} do not share a test set (classes or images "
                            "differ): an ensemble needs runs trained on the same data and classes")
        name, _ = load_weights(t.model, r, checkpoint, t.device)
        used.append(name)
        logits.append(predict(t.model, ref_x, s.train.eval_batch_size, t.augment.eval, t.amp_dtype, t.channels_last))
        del t
    data = ensemble_evaluate(logits, ref_y, ids)
    for m, c in zip(data["members"], used):
        m["checkpoint"] = c
    result = EnsembleResult(**data, checkpoints=used)
    if store:
        first = runs[0]
        first.add_result(result, step=first.last_step(), checkpoint=used[0])
        first.add_event("ensemble", f"ensemble of {len(runs)} runs: mean prob {result.mean_prob_acc:.2%}, vote "
                        f"{result.vote_acc:.2%}, best member {result.best_member_acc:.2%} ({result.gain:+.2%})",
                        step=first.last_step(), runs=ids)
    return result
