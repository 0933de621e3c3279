"""airbench's lookahead: every `train.lookahead_every` steps the weights and BN statistics
move to an EMA of themselves, and the run ends on the EMA.

At step s of S the EMA takes `1 - decay**every * (s/S)**3` of the live values (so it follows them
closely early on and averages more towards the end), then the live values are set to it. The decay
is computed on the host from step counts and the update is two foreach kernels on the device: no
host sync. The EMA is part of the checkpoint (`state_dict`), so a resumed run continues it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..spec import RunSpec


class Lookahead:
    def __init__(self, model: nn.Module, every: int, decay: float, total_steps: int):
        self.every, self.decay, self.total = every, decay, max(total_steps, 1)
        self.live = [t for t in model.state_dict(keep_vars=True).values() if t.is_floating_point()]
        self.live = [t.data if isinstance(t, nn.Parameter) else t for t in self.live]
        self.ema = [t.detach().clone() for t in self.live]

    @classmethod
    def build(cls, model: nn.Module, spec: RunSpec, total_steps: int) -> Lookahead | None:
        t = spec.train
        return cls(model, t.lookahead_every, t.lookahead_decay, total_steps) if t.lookahead_every else None

    def step(self, step: int) -> None:
        """After optimizer step `step` (1-based): update on the cadence, and end on the EMA."""
        if step >= self.total:  # airbench's last update: decay 1, the live weights become the EMA
            torch._foreach_copy_(self.live, self.ema)
        elif step % self.every == 0:
            weight = 1 - self.decay**self.every * (step / self.total) ** 3
            torch._foreach_lerp_(self.ema, self.live, weight)
            torch._foreach_copy_(self.live, self.ema)

    def state_dict(self) -> dict[str, Any]:
        return {"lookahead": [t.clone() for t in self.ema]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("lookahead")
        if saved is not None:
            torch._foreach_copy_(self.ema, [t.to(e.device) for t, e in zip(saved, self.ema)])
