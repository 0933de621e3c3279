"""What the loop measures, on the device, read in one host transfer per `monitor.every` steps.

Every step: global grad norm (before clipping), non-finite detection (the step is skipped on the
device through the fused optimizer's `found_inf`, no host sync). On sampled steps only: per-group
grad norms and update-to-weight ratios, activation statistics through forward hooks attached for
that one step, and per-sample loss quantiles. Values wait on the device as pending tensors; `read()`
concatenates them into one tensor and makes one transfer.

Definitions (also in the README):
- zeros: fraction of a ReLU's outputs that are exactly 0.
- dead: fraction of a ReLU's channels that are 0 for every sample and position of the batch.
- saturation: fraction of a ReLU-like activation's outputs in its flat region (0 for ReLU).
- GELU and SiLU (fastnet) count as ReLU-like, "off" where their input is below -3 (their slope
  there is under about 1% of its maximum): zeros, dead and saturation use that instead of == 0.
- gates: bounded activations (Sigmoid SE gates, Tanh, Hardtanh) are reported apart from the block's
  ReLUs, as `act/gate/<block>` (fraction within 0.01 of a bound: Sigmoid below 0.01 or above 0.99,
  Tanh |y| > 0.99) and `act/gate_mean/<block>`; they never dilute dead, zeros or mean.
- A block with several activations of one kind (two ReLUs in a BasicBlock) reports the mean of
  their per-activation figures (mean of means, mean of stds, ...), each call of a module counting once.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from .loss import SmoothingForm, cross_entropy
from .spec import MonitorSpec

RELU = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)
SMOOTH_RELU = (nn.GELU, nn.SiLU)  # "off" where the pre-activation is below -3 (slope under ~1% of max)
SMOOTH_OFF = -3.0
BOUNDED = {nn.Sigmoid: (0.0, 1.0), nn.Tanh: (-1.0, 1.0), nn.Hardtanh: (-1.0, 1.0)}
GATE_MARGIN = 0.01  # a gate is saturated within this of a bound: Sigmoid < 0.01 or > 0.99, Tanh |y| > 0.99
LOSS_BINS = torch.linspace(0.0, 5.0, 11)  # per-sample loss histogram edges (last bin takes the overflow)


def layer_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Parameters by top-level module (stem, layer1..4, fc for ResNets)."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(name.removeprefix("_orig_mod.").split(".")[0], []).append(p)
    return groups


def block_of(module_name: str) -> str:
    """The block an activation module belongs to: its parent path ('layer1.0.relu' -> 'layer1.0')."""
    parts = module_name.split(".")
    return ".".join(parts[:-1]) if len(parts) > 1 else parts[0]


@dataclass
class Pending:
    """Device tensors waiting for the next read: names and a flat tensor of the same length."""

    rows: list[tuple[int, list[str], torch.Tensor]] = field(default_factory=list)

    def add(self, step: int, names: list[str], values: torch.Tensor) -> None:
        self.rows.append((step, names, values.detach().float().reshape(-1)))


class Instruments:
    def __init__(self, model: nn.Module, spec: MonitorSpec, device: torch.device, grad_clip: float = 0.0):
        self.spec, self.device, self.grad_clip = spec, device, grad_clip
        self.model = model
        self.groups = layer_groups(model)
        self.group_names = list(self.groups)
        self.params = [p for ps in self.groups.values() for p in ps]
        self.group_index = torch.tensor([i for i, ps in enumerate(self.groups.values()) for _ in ps], device=device)
        self.pending = Pending()
        self.acts = [(n, m) for n, m in model.named_modules() if isinstance(m, RELU + SMOOTH_RELU + tuple(BOUNDED))]
        self._prev: list[torch.Tensor] | None = None
        z = torch.zeros((), device=device)
        self._gnorm_sum, self._gnorm_max = z.clone(), z.clone()
        self._skipped, self._streak = z.clone(), z.clone()
        self._n = 0
        # made once: a host->device copy per sampled step would drain the CUDA stream
        self._quantiles = torch.tensor([0.1, 0.5, 0.9], device=device)
        self._loss_bins = LOSS_BINS.to(device)
        self.gnorm_history: deque[float] = deque(maxlen=50)
        self.skipped_total = 0

    # -- cadences -------------------------------------------------------------------------------

    @staticmethod
    def due(every: int, step: int) -> bool:
        """A sampled step: the first one (so every run shows each instrument at once), then every `every`."""
        return every > 0 and (step == 1 or step % every == 0)

    # -- gradients --------------------------------------------------------------------------------

    def after_backward(self, step: int, nonfinite_counts_loss: torch.Tensor | None = None) -> torch.Tensor:
        """Global grad norm (and per-group on sampled steps), clipping, and the skip flag (device bool)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        per_param = torch.stack(torch._foreach_norm(grads))
        if per_param.dtype != torch.float32:
            per_param = per_param.float()
        total = torch.linalg.vector_norm(per_param)  # few kernels: this runs every step
        skip = ~torch.isfinite(total)
        finite_total = torch.where(skip, 0.0, total)
        self._gnorm_sum += finite_total
        torch.maximum(self._gnorm_max, finite_total, out=self._gnorm_max)
        skip_f = skip.float()
        self._skipped += skip_f
        bad = skip_f if nonfinite_counts_loss is None else nonfinite_counts_loss.float()
        self._streak.add_(bad).mul_(bad)  # the run of non-finite steps: +1, or back to 0
        self._n += 1
        if self.grad_clip > 0:
            coef = torch.clamp(self.grad_clip / (total + 1e-6), max=1.0)
            torch._foreach_mul_(grads, coef)
        if self.due(self.spec.grad_flow_every, step):
            group_sq = torch.zeros(len(self.group_names), device=per_param.device).index_add_(
                0, self.group_index, per_param.square())
            self.pending.add(step, [f"grad_norm/{g}" for g in self.group_names], group_sq.sqrt())
            self._prev = torch._foreach_mul([p.detach() for p in self.params], 1.0)
        return skip

    def after_step(self, step: int) -> None:
        """Update-to-weight ratio per group on sampled steps: ||w_new - w_old|| / ||w_old||."""
        if self._prev is None:
            return
        cur = [p.detach() for p in self.params]
        delta = torch.stack(torch._foreach_norm(torch._foreach_sub(cur, self._prev))).float().square()
        weight = torch.stack(torch._foreach_norm(self._prev)).float().square()
        g = len(self.group_names)
        d = torch.zeros(g, device=delta.device).index_add_(0, self.group_index, delta)
        w = torch.zeros(g, device=delta.device).index_add_(0, self.group_index, weight)
        self.pending.add(step, [f"update_ratio/{n}" for n in self.group_names], (d.sqrt() / (w.sqrt() + 1e-12)))
        self._prev = None

    # -- activations ------------------------------------------------------------------------------

    @contextmanager
    def watch_activations(self, step: int) -> Iterator[None]:
        """Attach forward hooks for this step only (when it is a sampled step)."""
        if not self.due(self.spec.activations_every, step) or not self.acts:
            yield
            return
        stats: dict[tuple[str, str], list[torch.Tensor]] = {}

        def hook_for(name: str, module: nn.Module):
            bounds = next((b for t, b in BOUNDED.items() if isinstance(module, t)), None)

            smooth = isinstance(module, SMOOTH_RELU)

            def hook(_m, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
                x = out.detach().float()
                if bounds is None:
                    zero = (inp[0].detach() < SMOOTH_OFF) if smooth else (x == 0)
                    zeros = sat = zero.float().mean()
                    if x.ndim > 1:  # a unit is a channel: dead if zero over the whole batch
                        dead = zero.transpose(0, 1).reshape(x.shape[1], -1).all(1).float().mean()
                    else:
                        dead = zeros
                else:  # a gate: only its saturation and mean mean something
                    lo, hi = bounds
                    sat = ((x < lo + GATE_MARGIN) | (x > hi - GATE_MARGIN)).float().mean()
                    stats.setdefault((block_of(name), "gate"), []).append(torch.stack([x.mean(), sat]))
                    return
                stats.setdefault((block_of(name), "act"), []).append(
                    torch.stack([x.mean(), x.std() if x.numel() > 1 else x.mean() * 0, zeros, dead.float(), sat]))

            return hook

        handles = [m.register_forward_hook(hook_for(n, m)) for n, m in self.acts]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
        if stats:
            self._add_activation_rows(step, stats)

    def _add_activation_rows(self, step: int, stats: dict[tuple[str, str], list[torch.Tensor]]) -> None:
        """Per-block rows (ReLU-like and gates apart), then the means over blocks: act/dead and
        act/saturation over the ReLU-like blocks, act/gate over the gated ones."""
        names: list[str] = []
        values: list[torch.Tensor] = []
        kinds = (("act", ("mean", "std", "zeros", "dead", "saturation"), {3: "act/dead", 4: "act/saturation"}),
                 ("gate", ("gate_mean", "gate"), {1: "act/gate"}))
        for kind, keys, summary in kinds:
            blocks = [(b, torch.stack(rows).mean(0)) for (b, k), rows in stats.items() if k == kind]
            if not blocks:
                continue
            for block, v in blocks:
                names += [f"act/{k}/{block}" for k in keys]
                values.append(v)
            per_block = torch.stack([v for _, v in blocks])
            names += list(summary.values())
            values.append(per_block[:, list(summary)].mean(0))
        self.pending.add(step, names, torch.cat(values))

    # -- sample difficulty ------------------------------------------------------------------------

    def on_logits(self, step: int, logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0,
                  form: SmoothingForm = "torch") -> None:
        """Quantiles and histogram of the per-sample training loss (the step's own loss: label
        smoothing of the same form included)."""
        if not self.due(self.spec.difficulty_every, step):
            return
        loss = cross_entropy(logits.detach().float(), y, label_smoothing, form, reduction="none")
        q = torch.quantile(loss, self._quantiles)
        edges = self._loss_bins
        idx = torch.bucketize(loss.clamp(max=edges[-1] - 1e-6), edges[1:-1], right=True)
        hist = torch.zeros(len(edges) - 1, device=loss.device).index_add_(0, idx, torch.ones_like(loss)) / loss.numel()
        names = ["difficulty/p10", "difficulty/p50", "difficulty/p90", "difficulty/max"]
        names += [f"difficulty/hist/{i:02d}" for i in range(len(edges) - 1)]
        self.pending.add(step, names, torch.cat([q, loss.max()[None], hist]))

    # -- the read -----------------------------------------------------------------------------------

    def window_tensors(self) -> tuple[list[str], torch.Tensor]:
        """The per-window scalars as one device tensor: mean and max grad norm over the finite steps,
        skipped steps in the window, and the current run of non-finite steps."""
        finite = (self._n - self._skipped).clamp(min=1)
        names = ["grad_norm", "grad_norm_max", "skipped_steps", "nonfinite_streak"]
        t = torch.stack([self._gnorm_sum / finite, self._gnorm_max, self._skipped, self._streak])
        return names, t

    def window_state(self) -> list[torch.Tensor]:
        """The device tensors a data-parallel run averages over its ranks before a read: the window's
        grad-norm and skip accumulators, then every pending row (all averaged in place)."""
        return [self._gnorm_sum, self._gnorm_max, self._skipped, self._streak] + [v for _, _, v in self.pending.rows]

    def reset_window(self) -> None:
        self._gnorm_sum.zero_()
        self._gnorm_max.zero_()
        self._skipped.zero_()
        self._n = 0

    def collect(self, extra: list[torch.Tensor]) -> tuple[list[float], list[tuple[int, str, float]]]:
        """One transfer: `extra` tensors (flattened, returned first) then every pending row."""
        w_names, w_vals = self.window_tensors()
        parts = [e.reshape(-1).float() for e in extra] + [w_vals] + [v for _, _, v in self.pending.rows]
        flat = torch.cat(parts).tolist() if parts else []
        n_extra = sum(e.numel() for e in extra)
        head, rest = flat[:n_extra], flat[n_extra:]
        window = dict(zip(w_names, rest[: len(w_names)]))
        rest = rest[len(w_names):]
        rows: list[tuple[int, str, float]] = []
        for step, names, v in self.pending.rows:
            rows += [(step, name, val) for name, val in zip(names, rest[: v.numel()])]
            rest = rest[v.numel():]
        self.pending.rows.clear()
        self._window = window
        self.reset_window()
        return head, rows

    def alarms(self, rows: list[tuple[int, str, float]]) -> list[tuple[str, str, str]]:
        """(kind, level, message) for the last read: grad-norm spikes and dead units."""
        out = []
        w = self._window
        gmax = w.get("grad_norm_max", 0.0)
        if self.gnorm_history and gmax > 0 and math.isfinite(gmax):
            med = statistics.median(self.gnorm_history)
            if med > 0 and gmax > self.spec.spike_factor * med:
                out.append(("grad_spike", "warning", f"grad norm {gmax:.3g} is {gmax / med:.0f}x its running median {med:.3g}"))
        if w.get("grad_norm", 0.0) > 0:
            self.gnorm_history.append(w["grad_norm"])
        for _, name, val in rows:
            if name.startswith("act/dead/") and val > self.spec.dead_threshold:
                out.append(("dead_units", "warning", f"{name[9:]}: {val:.0%} of units dead (threshold {self.spec.dead_threshold:.0%})"))
        return out

    @property
    def window(self) -> dict[str, float]:
        return getattr(self, "_window", {})
