"""The one training step every caller uses: AMP forward and backward, the instruments, and a
non-finite step skipped on the device (no host sync) that leaves the model exactly as it was."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..instruments import Instruments
from ..loss import cross_entropy
from ..runtime.device import autocast_for
from ..setup import Components


class Snapshot:
    """Tensors saved on the device and put back where a step was skipped, with no host sync.

    Per dtype: one foreach copy to save; one cat, one `where` and one foreach copy to restore,
    into buffers made once (the tensors must keep their storage: in-place updates only)."""

    def __init__(self, tensors: list[torch.Tensor]):
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t.detach())
        self.groups = [(ts, *self._scratch(ts)) for ts in by_dtype.values()]

    @staticmethod
    def _scratch(ts: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, list[torch.Tensor]]:
        """A flat copy with views shaped like each tensor, twice: the saved values and a work area."""
        def flat() -> tuple[torch.Tensor, list[torch.Tensor]]:
            whole = torch.empty(sum(t.numel() for t in ts), dtype=ts[0].dtype, device=ts[0].device)
            return whole, [v.view_as(t) for v, t in zip(whole.split([t.numel() for t in ts]), ts)]
        return (*flat(), *flat())

    def save(self) -> Snapshot:
        for ts, _, saved_views, _, _ in self.groups:
            torch._foreach_copy_(saved_views, ts)
        return self

    def restore_if(self, skip: torch.Tensor) -> None:
        """Where `skip` (a device bool) is set, every tensor gets its saved value back."""
        for ts, saved, _, work, work_views in self.groups:
            torch.cat([t.reshape(-1) for t in ts], out=work)
            torch.where(skip, saved, work, out=work)
            torch._foreach_copy_(ts, work_views)


@dataclass
class StepOut:
    """What one step leaves on the device: the loss, the logits and whether it was skipped."""

    loss: torch.Tensor
    logits: torch.Tensor
    skip: torch.Tensor


class Step:
    """Forward under autocast, backward through the scaler, instruments, optimizer step.

    A step with a non-finite loss or gradient is skipped on the device and leaves weights,
    optimizer state and BN running statistics exactly as before it. The scheduler is the
    caller's: the loop steps its schedule (or SWA's), the LR finder sets the LR itself.
    The loss is `engine.loss.cross_entropy` with the spec's `train.label_smoothing_form`."""

    def __init__(self, parts: Components, instruments: Instruments, label_smoothing: float = 0.0,
                 compile: bool = False):
        self.parts, self.instruments, self.label_smoothing = parts, instruments, label_smoothing
        self.smoothing_form = parts.spec.train.label_smoothing_form
        self.forward = torch.compile(parts.eager) if compile else parts.eager
        buffers = [b for b in parts.model.buffers() if b.is_floating_point() or b.dtype == torch.long]
        self.buffers = Snapshot(buffers) if buffers else None  # the forward moves BN running statistics

    def __call__(self, x: torch.Tensor, y: torch.Tensor, step: int) -> StepOut:
        """One optimizer step on a prepared batch `x` (see `Components.prepare`); `step` is 1-based."""
        p, inst = self.parts, self.instruments
        buffers = self.buffers.save() if self.buffers else None
        sampled = inst.due(inst.spec.activations_every, step)
        forward = p.eager if sampled else self.forward  # hooks run eagerly, never in a compiled graph
        with inst.watch_activations(step), autocast_for(p.device, p.amp_dtype):
            logits = forward(x)
            loss = cross_entropy(logits.float(), y, self.label_smoothing, self.smoothing_form)
        p.optimizer.zero_grad(set_to_none=True)
        p.scaler.scale(loss).backward()
        if p.scaler.is_enabled():
            p.scaler.unscale_(p.optimizer)
            # fp16 overflow is the scaler's business; only a non-finite loss counts toward the stop
            skip = inst.after_backward(step, ~torch.isfinite(loss.detach()))
            p.scaler.step(p.optimizer)
            p.scaler.update()
        else:
            skip = inst.after_backward(step)
            optimizer_step(p.optimizer, skip, inst.params)
        if buffers is not None:
            buffers.restore_if(skip)
        inst.after_step(step)
        inst.on_logits(step, logits, y, self.label_smoothing, self.smoothing_form)  # the training loss, per sample
        return StepOut(loss.detach(), logits.detach(), skip)


def optimizer_step(opt: torch.optim.Optimizer, skip: torch.Tensor, params: list[torch.Tensor]) -> None:
    """Step, skipped on the device where `skip` is set: fused kernels through `found_inf`; the
    others (RMSprop) step, then get their weights and state back."""
    if getattr(opt, "_step_supports_amp_scaling", False):
        opt.grad_scale, opt.found_inf = None, skip.float()
        opt.step()
        return
    saved = Snapshot(list(params) + [v for st in opt.state.values() for v in st.values()
                                     if isinstance(v, torch.Tensor) and v.device == skip.device]).save()
    opt.step()
    saved.restore_if(skip)
