"""Optimizers with per-layer param groups, per-iteration LR schedules, and SWA helpers."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .contracts import UsageError
from .optim_groups import group_factors, lr_scaled_groups
from .spec import AdamSpec, AdamWSpec, RMSpropSpec, RunSpec, ScheduleSpec, SGDSpec


class OptimError(UsageError, ValueError):
    """A spec that names something the model does not have."""


def _prefix_of(name: str, prefixes: list[str]) -> str | None:
    """The longest layer_lr prefix that names this parameter (on a dotted-name boundary)."""
    hits = [p for p in prefixes if name == p or name.startswith(p + ".")]
    return max(hits, key=len) if hits else None


def freeze_unlisted(model: nn.Module, optim: SGDSpec | AdamWSpec | AdamSpec | RMSpropSpec) -> list[str]:
    """With `optim.unlisted = "freeze"`, stop training every parameter no layer_lr prefix names (the
    guide's per-layer groups leave out fc and the stem's BN, so they keep their initial values);
    returns their names. The gradient still flows through them to the layers before."""
    if optim.unlisted != "freeze":
        return []
    prefixes = list(optim.layer_lr)
    frozen = [n for n, p in model.named_parameters() if _prefix_of(n.removeprefix("_orig_mod."), prefixes) is None]
    for n, p in model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    return frozen


def param_groups(model: nn.Module, optim: SGDSpec | AdamWSpec | AdamSpec | RMSpropSpec) -> list[dict]:
    """Groups by (layer prefix, decays?): each with `lr`, `lr_mult`, `weight_decay` and a `name`.

    `layer_lr_mode = "absolute"`: a prefix's value is its LR (its multiplier is value / optim.lr, so
    the schedule and a live LR change scale it like any other group)."""
    prefixes = list(optim.layer_lr)
    named = [(n.removeprefix("_orig_mod."), p) for n, p in model.named_parameters() if p.requires_grad]
    used = {_prefix_of(n, prefixes) for n, _ in named}
    unknown = [p for p in prefixes if p not in used]
    if unknown:
        tops = sorted({n.split(".")[0] for n, _ in named})
        raise OptimError(
            f"optim.layer_lr: prefix {', '.join(repr(u) for u in unknown)} matches no parameter; "
            f"available prefixes: {', '.join(tops)}"
        )
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in named:
        prefix = _prefix_of(name, prefixes) or "default"
        decays = not (optim.no_decay_bn_bias and p.ndim <= 1)
        g = groups.get((prefix, decays))
        if g is None:
            value = optim.layer_lr.get(prefix)
            absolute = value is not None and optim.layer_lr_mode == "absolute"
            mult = 1.0 if value is None else value / optim.lr if absolute else value
            g = groups[(prefix, decays)] = {
                "params": [],
                "name": prefix if decays else f"{prefix}/no_decay",
                "layer": prefix,
                "lr_mult": mult,
                "lr": value if absolute else optim.lr * mult,
                "weight_decay": optim.weight_decay if decays else 0.0,
            }
        g["params"].append(p)
    return list(groups.values())


def build_optimizer(model: nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    o = spec.optim
    groups = lr_scaled_groups(param_groups(model, o), model, spec)  # BN/bias LR, whitening bias
    # fused kernels skip a step on the device when `found_inf` is set: no host sync for the
    # non-finite guard (see engine/train/step.py); RMSprop has no fused kernel and uses foreach
    fused = {"fused": True}
    if isinstance(o, SGDSpec):
        opt: torch.optim.Optimizer = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum,
                                                     nesterov=o.nesterov and o.momentum > 0, **fused)
    elif isinstance(o, AdamSpec):
        opt = torch.optim.Adam(groups, lr=o.lr, betas=o.betas, eps=o.eps, **fused)
    elif isinstance(o, AdamWSpec):
        opt = torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps, **fused)
    elif isinstance(o, RMSpropSpec):
        opt = torch.optim.RMSprop(groups, lr=o.lr, alpha=o.alpha, momentum=o.momentum, foreach=True)
    else:
        raise OptimError(f"unknown optimizer {o.name!r}")  # unreachable: the spec validates names
    zero_state(opt)
    return opt


def zero_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's state as zeros before the first step.

    Fused SGD makes its momentum buffers with `empty_like` on its first step and copies the gradient
    in; when that first step is skipped (`found_inf`), the kernel returns before writing them and
    the garbage stays. Zeros give exactly PyTorch's first step (dampening 0: buf = 0 * m + grad).
    RMSprop's state is made up front (as its own lazy init would) so a skipped step can restore it.
    Adam and AdamW initialise zeros themselves and undo their step count on `found_inf`."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if state:
                continue
            if isinstance(optimizer, torch.optim.SGD) and group["momentum"] != 0:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif isinstance(optimizer, torch.optim.RMSprop):
                state["step"] = torch.tensor(0.0)  # RMSprop's update does not read it
                state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["momentum"] > 0:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["centered"]:
                    state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def lr_factor(spec: ScheduleSpec, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The LR multiplier at iteration `step` (0-based), for LambdaLR."""
    total = max(total_steps, 1)
    warm = min(int(round(spec.warmup_epochs * steps_per_epoch)), total - 1)

    def warmup(step: int) -> float | None:
        return (step + 1) / warm if step < warm else None

    if spec.name == "constant":
        return lambda s: warmup(s) or 1.0
    if spec.name == "step":
        marks = [int(m * total) for m in spec.milestones]
        return lambda s: warmup(s) or spec.gamma ** sum(s >= m for m in marks)
    if spec.name == "cosine":

        def cosine(s: int) -> float:
            w = warmup(s)
            if w is not None:
                return w
            t = min((s - warm) / max(total - warm, 1), 1.0)
            return spec.min_lr + (1 - spec.min_lr) * 0.5 * (1 + math.cos(math.pi * t))

        return cosine
    if spec.name == "onecycle":
        # torch's OneCycleLR (cos annealing both ways) as a multiplier of the peak: the peak at step
        # pct_start * total - 1, the floor at the last step
        up = max(spec.pct_start * total - 1, 1.0)
        down = max(total - 1 - up, 1.0)
        lo = 1 / spec.div_factor
        end = lo / spec.final_div_factor

        def onecycle(s: int) -> float:
            if s <= up:
                return lo + (1 - lo) * 0.5 * (1 - math.cos(math.pi * s / up))
            t = min((s - up) / down, 1.0)
            return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))

        return onecycle
    raise ValueError(f"unknown schedule {spec.name!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, spec: RunSpec, steps_per_epoch: int) -> LambdaLR:
    total = spec.train.epochs * steps_per_epoch
    factor = lr_factor(spec.schedule, total, steps_per_epoch)
    return LambdaLR(optimizer, group_factors(optimizer.param_groups, factor, steps_per_epoch))


def set_base_lr(optimizer: torch.optim.Optimizer, scheduler: LambdaLR, lr: float, layer: str | None = None,
                mult: float | None = None) -> None:
    """Change the base LR (or one layer's multiplier) live; the schedule's shape carries on."""
    at = max(scheduler.last_epoch, 0)
    base = lr
    for i, g in enumerate(optimizer.param_groups):
        if layer is not None and g.get("layer") == layer and mult is not None:
            g["lr_mult"] = mult
        scheduler.base_lrs[i] = base * g.get("lr_mult", 1.0) * g.get("lr_scale", 1.0)
        g["initial_lr"] = scheduler.base_lrs[i]
        g["lr"] = scheduler.base_lrs[i] * scheduler.lr_lambdas[i](at)  # each group's own factor (a frozen one stays 0)


def base_lr(optimizer: torch.optim.Optimizer, scheduler: LambdaLR) -> float:
    g = optimizer.param_groups[0]
    return scheduler.base_lrs[0] / g.get("lr_mult", 1.0)


def set_swa_lr(optimizer: torch.optim.Optimizer, lr: float, layer: str | None = None,
               mult: float | None = None) -> None:
    """While SWA runs: change the SWA LR (or one layer's multiplier) that SWALR anneals to and holds.

    SWALR reads each group's `swa_lr` at every step, so the change sticks (and is checkpointed
    with the optimizer's param groups)."""
    for g in optimizer.param_groups:
        if layer is not None and g.get("layer") == layer and mult is not None:
            g["lr_mult"] = mult
        g["swa_lr"] = lr * g.get("lr_mult", 1.0) * g.get("lr_scale", 1.0)


def swa_base_lr(optimizer: torch.optim.Optimizer) -> float:
    g = optimizer.param_groups[0]
    return g["swa_lr"] / g.get("lr_mult", 1.0)
