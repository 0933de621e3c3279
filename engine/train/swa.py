"""Stochastic weight averaging with torch.optim.swa_utils: the averaged model, SWALR, BN update."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from ..runtime.device import autocast_for
from ..setup import Components


class SWA:
    """Weight averaging over a run's model; off until `start()`."""

    def __init__(self, parts: Components):
        self.parts = parts
        self.model: AveragedModel | None = None
        self.scheduler: SWALR | None = None

    @property
    def active(self) -> bool:
        return self.model is not None

    def start(self) -> bool:
        """Average from now on, with SWALR annealing each group to its SWA LR; False if already on."""
        if self.model is not None:
            return False
        p, s = self.parts, self.parts.spec.swa
        self.model = AveragedModel(p.model)
        for g in p.optimizer.param_groups:  # a resumed run keeps an SWA LR that was set live
            # BN/bias groups keep their scale; the whitening bias, frozen by then, stays frozen
            frozen = 0.0 if "freeze_after_epochs" in g else 1.0
            g.setdefault("swa_lr", s.lr * g.get("lr_mult", 1.0) * g.get("lr_scale", 1.0) * frozen)
        self.scheduler = SWALR(p.optimizer, swa_lr=[g["swa_lr"] for g in p.optimizer.param_groups],
                               anneal_epochs=max(s.anneal_epochs * p.steps_per_epoch, 1),
                               anneal_strategy=s.anneal_strategy)
        return True

    def update(self) -> None:
        assert self.model is not None
        self.model.update_parameters(self.parts.model)

    def update_bn(self) -> None:
        """Recompute BN statistics for the averaged weights on un-augmented train data, under the
        run's AMP and memory format."""
        assert self.model is not None
        p = self.parts
        batches = (p.prepare(xb, train=False) for xb, _, _ in p.train_loader.epoch_batches(0))
        with autocast_for(p.device, p.amp_dtype):
            update_bn(batches, self.model, device=p.device)

    def state_dict(self) -> dict[str, Any]:
        assert self.model is not None and self.scheduler is not None
        return {"swa_model": self.model.state_dict(), "swa_scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.start()
        self.model.load_state_dict(state["swa_model"])
        if state.get("swa_scheduler"):
            self.scheduler.load_state_dict(state["swa_scheduler"])
