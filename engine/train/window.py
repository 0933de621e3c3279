"""The metrics window: what the steps since the last read add up to, kept on the device and read
in one host transfer every `monitor.every` steps (all-reduced first under torchrun)."""

from __future__ import annotations

import time

import torch

from ..instruments import Instruments
from ..runtime.distributed import sync_window
from ..setup import Components
from .sink import Row
from .step import StepOut


class Window:
    def __init__(self, parts: Components, instruments: Instruments):
        self.parts, self.instruments = parts, instruments
        cuda = parts.device.type == "cuda"
        self._cuda = cuda
        self._data_events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []  # a pair per step, reused
        self.trained_lrs = [g["lr"] for g in parts.optimizer.param_groups]
        self.start = time.perf_counter()
        self.reset()

    def reset(self) -> None:
        self.sums = torch.zeros(3, device=self.parts.device)  # loss x samples, correct, samples
        self.steps, self.data_time = 0, 0.0

    def prepare(self, xb: torch.Tensor) -> torch.Tensor:
        """Augment a batch, timing it (exactly on CPU; on CUDA by a pair of events per step, read with
        the window, so data_time_ms is the window's mean there too)."""
        if self._cuda:
            if len(self._data_events) <= self.steps:
                self._data_events.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            self._data_events[self.steps][0].record()
        t0 = time.perf_counter()
        x = self.parts.prepare(xb)
        if self._cuda:
            self._data_events[self.steps][1].record()
        self.data_time += time.perf_counter() - t0
        return x

    def add(self, out: StepOut, y: torch.Tensor) -> None:
        """A step's loss and accuracy (a skipped step counts for neither), and the LR it trained with."""
        n = y.shape[0]
        correct = (out.logits.argmax(1) == y).sum().float()
        step = torch.stack([out.loss.float() * n, correct, torch.full((), float(n), device=correct.device)])
        self.sums += torch.where(out.skip, 0.0, step)  # few kernels: this runs every step
        self.trained_lrs = [g["lr"] for g in self.parts.optimizer.param_groups]  # before the scheduler moves it
        self.steps += 1

    def read(self, step: int, batch_size: int) -> tuple[list[Row], list[Row], dict[str, float]]:
        """(the window's rows at `step`, the instruments' sampled rows, the instruments' window)."""
        parts, inst = self.parts, self.instruments
        if parts.dist.active:  # loss, correct and samples summed over the ranks, the instruments averaged
            sync_window(parts.dist, [self.sums], inst.window_state())
        (loss_sum, correct, n), sampled_rows = inst.collect([self.sums])
        now = time.perf_counter()
        elapsed = max(now - self.start, 1e-9)
        w, steps, groups = inst.window, self.steps, parts.optimizer.param_groups
        rows = [("lr", self.trained_lrs[0] / groups[0].get("lr_mult", 1.0)),  # what the window's last step used
                ("images_per_s", steps * batch_size / elapsed), ("step_time_ms", 1000 * elapsed / steps)]
        skipped = round(w["skipped_steps"])
        if skipped < steps:  # the grad norms of the finite steps
            rows += [("grad_norm", w["grad_norm"]), ("grad_norm_max", w["grad_norm_max"])]
        if n > 0:
            rows += [("train_loss", loss_sum / n), ("train_acc", correct / n)]
        inst.skipped_total += skipped
        if inst.skipped_total:
            rows += [("skipped_steps", skipped), ("skipped_total", inst.skipped_total)]
        layers: dict[str, float] = {}
        for g, lr in zip(groups, self.trained_lrs):  # a layer's first group: the BN/bias groups come later
            layers.setdefault(g["layer"], lr)
        if len(layers) > 1:
            rows += [(f"lr/{k}", v) for k, v in layers.items()]
        if parts.device.type == "cuda":
            rows.append(("memory_gb", torch.cuda.max_memory_allocated(parts.device) / 2**30))
            pairs = self._data_events[:steps]  # complete: the read above waited for the device
            rows.append(("data_time_ms", sum(a.elapsed_time(b) for a, b in pairs) / max(len(pairs), 1)))
        else:
            rows.append(("data_time_ms", 1000 * self.data_time / steps))
        if parts.scaler.is_enabled():
            rows.append(("loss_scale", parts.scaler.get_scale()))
        self.reset()
        self.start = now
        return [(step, k, v) for k, v in rows], sampled_rows, w
