"""The LR range test: an exponential sweep of the LR over a fresh model, with the training step."""

from __future__ import annotations

import math

import torch

from ..contracts import LRFindResult
from ..setup import Components, build
from ..spec import RunSpec
from ..store import Run
from ..train.step import Step
from .common import Log, PassError, guard_instruments, quiet


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


class _Curve:
    """The loss against the LR with its bias-corrected moving average, and when to stop."""

    def __init__(self, beta: float, diverge: float):
        self.beta, self.diverge = beta, diverge
        self.points: list[dict[str, float]] = []
        self.avg, self.best = 0.0, math.inf

    def add(self, step: int, lr: float, loss: float) -> str:
        """Record a step (0-based); returns why the sweep stops here, or ""."""
        if not math.isfinite(loss):
            return f"loss not finite at lr {lr:.3g}"
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        smooth = self.avg / (1 - self.beta ** (step + 1))
        self.points.append({"step": step + 1, "lr": lr, "loss": loss, "smooth": smooth})
        self.best = min(self.best, smooth)
        if step > 0 and smooth > self.diverge * self.best:
            return f"smoothed loss {smooth:.3g} > {self.diverge:g} x best {self.best:.3g} at lr {lr:.3g}"
        return ""


def _sweep(p: Components, stepper: Step, steps: int, start_lr: float, end_lr: float, curve: _Curve) -> str:
    """Train `steps` steps at exponentially rising LRs; returns why it stopped early, or ""."""
    gamma = (end_lr / start_lr) ** (1 / (steps - 1))
    pending: list[tuple[int, float, torch.Tensor]] = []
    check_every = 8  # losses are read in one transfer every few steps, not one .item() per step
    it = p.train_loader.forever()
    for i in range(steps):
        lr = start_lr * gamma**i
        for g in p.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0) * g.get("lr_scale", 1.0)  # BN/bias groups keep their scale
        xb, yb = next(it)
        pending.append((i, lr, stepper(p.prepare(xb), yb, i + 1).loss))  # a non-finite step is skipped
        if len(pending) < check_every and i < steps - 1:
            continue
        values = torch.stack([loss for _, _, loss in pending]).float().cpu().tolist()
        for (step, step_lr, _), value in zip(pending, values):
            reason = curve.add(step, step_lr, value)
            if reason:
                return reason
        pending = []
    return ""


def _store(run: Run, result: LRFindResult, steps_per_epoch: int) -> None:
    spe = max(steps_per_epoch, 1)
    rows = []
    for point in result.points:
        e = point.step / spe
        rows += [(point.step, e, "lrfind/loss", point.loss), (point.step, e, "lrfind/smooth", point.smooth),
                 (point.step, e, "lrfind/lr", point.lr)]
    run.add_metrics(rows)
    last = result.points[-1].step
    run.add_result(result, step=last)
    why = f"; {result.stop_reason}" if result.stop_reason else ""
    run.add_event("lr_find", f"LR range test {result.start_lr:g}..{result.end_lr:g} over {len(result.points)} steps: "
                  f"suggested lr {result.suggested_lr:.3g} ({result.method}){why}", step=last)


def lr_find(spec: RunSpec, steps: int = 200, start_lr: float = 1e-6, end_lr: float = 10.0, run: Run | None = None,
            beta: float = 0.98, diverge: float = 4.0, log: Log | None = None) -> LRFindResult:
    """LR range test: from a freshly built model, raise the LR exponentially from start_lr to end_lr
    over `steps` optimizer steps (constant schedule, looping the train loader, the training step
    with its non-finite skip), recording the loss and its bias-corrected exponential moving
    average (beta). Stops early when the smoothed loss exceeds `diverge` x its best, or the loss
    is not finite.

    The result: suggested_lr, method ("steepest": steepest descent of the smoothed loss before its
    minimum; "min_loss/10" as the fallback), min_loss_lr, steepest_lr, points (step, lr, loss,
    smooth), start_lr, end_lr, steps, stopped_early, stop_reason. With `run`, also stores metrics
    "lrfind/loss", "lrfind/smooth", "lrfind/lr" by step, the result and an event.
    """
    if steps < 2:
        raise PassError(f"lr_find needs at least 2 steps, got {steps}")
    if not (0 < start_lr < end_lr):
        raise PassError(f"lr_find needs 0 < start_lr < end_lr, got {start_lr:g} and {end_lr:g}")
    log = log or quiet
    spec = spec.model_copy(deep=True)
    spec.schedule.name = "constant"
    spec.schedule.warmup_epochs = 0.0
    spec.swa.enabled = False
    p = build(spec, log=log)
    p.model.train()
    curve = _Curve(beta, diverge)
    stop_reason = _sweep(p, Step(p, guard_instruments(p, spec), spec.train.label_smoothing), steps, start_lr,
                         end_lr, curve)
    points = curve.points
    if len(points) < 2:
        raise PassError(f"lr_find diverged at once ({stop_reason or 'no finite loss'}): lower start_lr")
    suggested, method, min_lr, steepest = _suggest([q["lr"] for q in points], [q["smooth"] for q in points])
    result = LRFindResult(suggested_lr=suggested, method=method, min_loss_lr=min_lr, steepest_lr=steepest,
                          points=points, start_lr=start_lr, end_lr=end_lr, steps=steps,
                          stopped_early=bool(stop_reason), stop_reason=stop_reason, optimizer=spec.optim.name)
    if run is not None:
        _store(run, result, p.steps_per_epoch)
    log(f"lr_find: suggested lr {suggested:.3g} ({method})")
    return result
