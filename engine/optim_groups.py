"""Parameter groups whose LR is scaled (airbench's optimizer side): BatchNorm and bias parameters at `optim.bn_bias_lr_mult`
times the LR (their weight decay divided by it, so the decay per step stays the same), and the
whitening stem's bias in its own group whose LR is 0 after `model.whiten_bias_epochs`.

The groups that carry an `lr_scale` come after the plain ones, so group 0 (which the LR metric and
a live LR change read) always trains at the base LR times its layer multiplier."""

from __future__ import annotations

from typing import Callable

from torch import nn

from .models.whitening import whitening_layers
from .spec import RunSpec

Factor = Callable[[int], float]


def lr_scaled_groups(groups: list[dict], model: nn.Module, spec: RunSpec) -> list[dict]:
    """`groups` from `param_groups`, with the whitening bias split off and the BN/bias groups scaled."""
    whiten = {id(p) for layer in whitening_layers(model) for p in layer.parameters() if p.requires_grad}
    mult, lr = spec.optim.bn_bias_lr_mult, spec.optim.lr
    plain: list[dict] = []
    scaled: list[dict] = []
    whiten_params = []
    for g in groups:
        params = [p for p in g["params"] if id(p) not in whiten]
        whiten_params += [p for p in g["params"] if id(p) in whiten]
        small = [p for p in params if p.ndim <= 1] if mult != 1 else []
        big = [p for p in params if p.ndim > 1] if mult != 1 else params
        if big:
            plain.append(dict(g, params=big))
        if small:
            scaled.append(dict(g, params=small, name=g["name"] + "/bn_bias", lr=g["lr"] * mult, lr_scale=mult,
                               weight_decay=g["weight_decay"] / mult))
    out = plain + scaled
    if whiten_params:
        out.append({"params": whiten_params, "name": "whiten", "layer": "whiten", "lr_mult": 1.0, "lr": lr,
                    "weight_decay": 0.0, "freeze_after_epochs": spec.model.whiten_bias_epochs})
    return out


def group_factors(groups: list[dict], factor: Factor, steps_per_epoch: int) -> list[Factor]:
    """One LambdaLR factor per group: the schedule's, or 0 from a group's `freeze_after_epochs` on."""
    def frozen_after(steps: int) -> Factor:
        return lambda s: factor(s) if s < steps else 0.0

    return [frozen_after(g["freeze_after_epochs"] * steps_per_epoch) if "freeze_after_epochs" in g else factor
            for g in groups]
