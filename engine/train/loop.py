"""The training loop: `Trainer.fit()` over the parts `engine.setup.build` makes.

Data on the device, batched augmentation, the AMP step (train/step.py), a metrics window read in
one transfer every `monitor.every` steps (train/window.py) into a sink (train/sink.py), commands
between steps (train/commands.py), evaluation and checkpoints at epoch ends (train/state.py), SWA
(train/swa.py).

Under torchrun (`dist` active, see engine/runtime/distributed.py) the same loop runs on every
rank: each rank trains on its slice of every global batch, the window is all-reduced at each read,
commands are exchanged at the same read (they take effect at the next `monitor.every` boundary),
and only the store rank (`store` is None elsewhere) writes the run store, evaluates and writes
checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .. import checkpoint as ckpt
from ..checkpoint_writer import CheckpointWriter
from ..contracts import Command, HardestResult, HardExample, InferenceInfo, SlowOnCPU, SWAResult, meta_model
from ..data import DataError, Progress
from ..evaluate import EvalResult
from ..instruments import Instruments
from ..runtime.device import device_name
from ..runtime.distributed import DistContext, average_buffers
from ..setup import build
from ..spec import RunSpec
from ..store import Run
from ..thumbs import MAX_THUMBS, thumbnails
from . import state
from .commands import CommandRouter, PassHandler
from .lookahead import Lookahead
from .sink import Sink, StoreSink, cuda_indices
from .step import Step
from .swa import SWA
from .window import Window


class StopRun(Exception):
    """Raised inside the loop to end the run early with a state and reason."""

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason


class Trainer:
    """Builds everything from the spec and runs `fit()`; `store` (the run store) is optional."""

    def __init__(self, spec: RunSpec, store: Run | None = None, log: Callable[[str], None] = print,
                 dist: DistContext | None = None, sync_bn: bool = False, on_pass: PassHandler | None = None,
                 on_progress: Progress | None = None):
        """`dist`: this process's place in a torchrun job (None: a single process); `store` must then
        be None on every rank but the store rank. `sync_bn`: SyncBatchNorm under DDP (CUDA only).
        `on_pass`: runs a finishing-pass command on the live model (the worker gives it).
        `on_progress(desc, done, total)`: the data loading's progress."""
        self.spec, self.store, self.log = spec, store, log
        self.parts = p = build(spec, dist, sync_bn=sync_bn, log=log, on_progress=on_progress)
        self.instruments = Instruments(p.model, spec.monitor, p.device, grad_clip=spec.train.grad_clip)
        self.stepper = Step(p, self.instruments, spec.train.label_smoothing, spec.train.compile)
        self.window = Window(p, self.instruments)
        self.sink = StoreSink(store, spec, log, cuda_indices(p.device, p.dist)) if store is not None else Sink(log)
        self.commands = CommandRouter(self, on_pass)
        self.swa = SWA(p)
        self.swa_start = spec.swa_start_epoch() if spec.swa.enabled else None
        self.total_steps = spec.train.epochs * p.steps_per_epoch
        self.lookahead = Lookahead.build(p.model, spec, self.total_steps)  # None when off
        self.writer = CheckpointWriter()  # serializes and fsyncs off this thread
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # current epoch (0-based)
        self.batch_in_epoch = 0  # next batch of the current epoch
        self.best_acc = -1.0
        self.pace_checked = False  # the first window's pace is checked against the run's length once
        self.paused = False
        self.stop_request: tuple[str, str] | None = None  # (state, reason) set by a signal or command

    # the parts that callers reach for most
    model = property(lambda self: self.parts.model)
    optimizer = property(lambda self: self.parts.optimizer)
    scheduler = property(lambda self: self.parts.scheduler)
    scaler = property(lambda self: self.parts.scaler)
    train_loader = property(lambda self: self.parts.train_loader)
    augment = property(lambda self: self.parts.augment)
    data = property(lambda self: self.parts.data)
    device = property(lambda self: self.parts.device)
    dist = property(lambda self: self.parts.dist)
    amp_dtype = property(lambda self: self.parts.amp_dtype)
    channels_last = property(lambda self: self.parts.channels_last)
    steps_per_epoch = property(lambda self: self.parts.steps_per_epoch)
    test_x = property(lambda self: self.parts.test_x)
    test_y = property(lambda self: self.parts.test_y)

    def event(self, kind: str, message: str, level: str = "info", **data: Any) -> None:
        self.sink.event(kind, message, level=level, step=self.step, **data)

    # -- the step and its window --------------------------------------------------------------

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One optimizer step; everything it measures stays on the device."""
        out = self.stepper(self.window.prepare(xb), yb, self.step + 1)
        self.window.add(out, yb)
        (self.swa.scheduler or self.scheduler).step()
        self.step += 1
        if self.lookahead:
            self.lookahead.step(self.step)

    def flush_window(self) -> None:
        """One host transfer for the window's metrics; rows go to the sink in one transaction."""
        if self.window.steps == 0:
            return
        rows, sampled_rows, window = self.window.read(self.step, self.spec.train.batch_size)
        skipped = round(window["skipped_steps"])
        if skipped:
            self.event("nonfinite", f"{skipped} step(s) with a non-finite loss or gradient "
                       f"skipped before step {self.step}", level="error")
        for kind, level, message in self.instruments.alarms(sampled_rows):
            self.event(kind, message, level=level)
        self.sink.metrics(rows + sampled_rows, self.steps_per_epoch)
        if not self.pace_checked:
            self.say_if_gpu_sized(dict((k, v) for _, k, v in rows))
        limit = self.spec.monitor.nonfinite_limit
        if window["nonfinite_streak"] >= limit:
            raise StopRun("failed", f"{int(window['nonfinite_streak'])} non-finite steps in a row "
                          f"(monitor.nonfinite_limit={limit}); the last good checkpoint is intact")

    def say_if_gpu_sized(self, window: dict[str, float]) -> None:
        """Once, after the first window: a run on a CPU whose remaining steps at this pace take more
        than an hour is GPU-sized; the event names the CPU recipe (and lands in worker.log)."""
        self.pace_checked = True
        step_s = window.get("step_time_ms", 0.0) / 1000
        if self.device.type != "cpu" or self.store is None or step_s <= 0:
            return
        eta = (self.total_steps - self.step) * step_s
        if eta > SlowOnCPU.LIMIT_S:
            recipe = SlowOnCPU.model_fields["recipe"].default
            said = SlowOnCPU(eta_s=eta, images_per_s=window.get("images_per_s", 0.0),
                             recipe="" if self.spec.name == recipe else recipe)
            self.event(said.KIND, said.message(), level="warning", **said.model_dump())

    # -- the loop ------------------------------------------------------------------------------

    def fit(self) -> str:
        """Train to the end (or a stop); returns the end state: finished, stopped or failed."""
        spec, p = self.spec, self.parts
        self.event("started", f"training {spec.model.name} on {p.data.name} ({p.device})",
                   steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)
        self.record_setup()
        where = device_name(p.device) + (f" x {p.dist.describe()}" if p.dist.active else "")
        self.sink.meta(state="running", total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                       epochs=spec.train.epochs, device=where)
        try:
            end, reason = self.train_epochs()
            if self.swa.active and end != "failed":
                self.finish_swa()
            if end == "finished":  # last.pt once; with no validation split best.pt is the same state
                self.save("last", *(() if p.val_x.shape[0] else ("best",)))
            self.writer.close()  # on disk (or its error raised) before the run says it ended
        except BaseException:
            self.writer.abandon()
            raise
        if end == "failed":  # the reason where every view reads a failure (runs, attach, the report)
            self.sink.meta(error=reason, error_kind="training")
        self.sink.close()
        self.event(end, reason, level="error" if end == "failed" else "info")
        return end

    def train_epochs(self) -> tuple[str, str]:
        """The epochs from where the run stands; (end state, reason)."""
        spec, p = self.spec, self.parts
        try:
            while self.epoch < spec.train.epochs:
                if self.swa_start is not None and self.epoch >= self.swa_start:
                    self.start_swa("spec")
                self.window.start = time.perf_counter()
                for xb, yb, _ in p.train_loader.epoch_batches(self.epoch, self.batch_in_epoch):
                    self.train_step(xb, yb)
                    self.batch_in_epoch += 1
                    boundary = self.step % spec.monitor.every == 0
                    if boundary:
                        self.flush_window()
                    self.between_steps(boundary)
                self.flush_window()
                if self.swa.active:
                    self.swa.update()
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                if self.epoch % spec.evaluate.every == 0 or self.epoch == spec.train.epochs:
                    self.evaluate_epoch()
                if self.epoch % spec.train.checkpoint_every == 0 and self.epoch < spec.train.epochs:
                    self.save("last")  # the run's end writes the final one
        except StopRun as stop:
            if stop.state == "stopped":
                self.flush_window()
                self.save("last")
            return stop.state, stop.reason
        return "finished", "done"

    def record_setup(self) -> None:
        """Meta `runtime` (what actually runs) and, the first time, meta `inference` (what predict and
        export need, so they never open the dataset). A resumed run whose data now has other classes
        or another image size stops here: its outputs would mean other classes."""
        if self.store is None:
            return
        now = self.parts.inference_info()
        before = meta_model(self.store.meta(), "inference", InferenceInfo)
        if before is not None and (before.classes, before.channels, before.height, before.width) != (
                now.classes, now.channels, now.height, now.width):
            raise DataError(f"the data at {self.parts.data.root or self.parts.data.name} has changed since this run "
                            f"started ({len(before.classes)} classes {before.classes[:5]}..., "
                            f"{before.channels}x{before.height}x{before.width}; now {len(now.classes)} classes "
                            f"{now.classes[:5]}..., {now.channels}x{now.height}x{now.width}): restore it, or train a new run")
        extra = {} if before is not None else {"inference": now.model_dump()}
        self.sink.meta(runtime=self.parts.runtime_info().model_dump(), **extra)

    def between_steps(self, boundary: bool) -> None:
        """Commands, pause and stop. Under DDP they act only where every rank meets: a window
        boundary, or while paused."""
        self.commands.poll()
        ddp = self.parts.dist.active
        if ddp and boundary:
            self.commands.sync()
        while self.paused and not (self.commands.agreed_stop if ddp else self.stop_request):
            time.sleep(0.1)
            self.commands.poll(force=True)
            if ddp:
                self.commands.sync()
            self.window.start = time.perf_counter()
        stop = self.commands.agreed_stop if ddp else self.stop_request
        if stop:
            raise StopRun(*stop)

    # -- evaluation ----------------------------------------------------------------------------

    def eval_model(self, model: torch.nn.Module | None = None, split: str = "test") -> EvalResult:
        return self.parts.evaluate(model, split)

    def evaluate_epoch(self) -> None:
        """Evaluate and record (the store rank only, under DDP); every rank learns the selection score."""
        select = self._evaluate_and_record() if self.dist.is_store else None
        select = self.dist.broadcast_object(select)
        if select is not None and select > self.best_acc:  # None: no validation split, best.pt is written at the end
            self.best_acc = select
            self.save("best")

    def _evaluate_and_record(self) -> float | None:
        """Test (and validation) loss and accuracy, the hardest test examples; returns the selection
        score: validation accuracy where there is a validation split, else None (select the last
        epoch: choosing on the test set would be peeking)."""
        test = self.eval_model()
        rows = [("test_loss", test.loss), ("test_acc", test.acc)]
        select = None
        if self.parts.val_x.shape[0]:
            val = self.eval_model(split="val")
            rows += [("val_loss", val.loss), ("val_acc", val.acc)]
            select = val.acc
        self.sink.metrics([(self.step, k, v) for k, v in rows], self.steps_per_epoch)
        k = min(self.spec.evaluate.hardest, test.targets.numel())
        if k and self.store:
            losses = F.cross_entropy(test.logits, test.targets, reduction="none")
            top = losses.topk(k)
            preds = test.logits.argmax(1)[top.indices]
            thumbs = thumbnails(self.parts.test_x[top.indices[:MAX_THUMBS]])  # for viewers without the data
            self.sink.result(HardestResult(examples=[
                HardExample(index=i, label=lbl, pred=pr, loss=ls, thumb=thumbs[n] if n < len(thumbs) else "")
                for n, (i, lbl, pr, ls) in enumerate(zip(top.indices.tolist(), test.targets[top.indices].tolist(),
                                                         preds.tolist(), top.values.tolist()))],
                classes=list(self.parts.data.classes)), step=self.step)
        self.sink.weights(self.instruments.groups, self.step)
        self.log(f"epoch {self.epoch}/{self.spec.train.epochs} step {self.step}: "
                 + " ".join(f"{k}={v:.4f}" for k, v in rows))
        return select

    # -- commands, checkpoints, SWA ------------------------------------------------------------

    def handle_command(self, command: Command) -> str:
        return self.commands.handle(command)

    def state_dict(self) -> dict[str, Any]:
        return state.state_dict(self)

    def load_state(self, saved: dict[str, Any]) -> None:
        state.load_state(self, saved)

    def save(self, *kinds: str) -> Path | None:
        return state.save(self, *kinds)

    def resume(self) -> Path:
        return state.resume(self)

    def start_swa(self, why: str) -> None:
        if self.swa.start():
            self.event("swa_started", f"SWA started at epoch {self.epoch + 1} ({why})", why=why)

    def finish_swa(self) -> None:
        """Recompute BN statistics for the averaged weights, evaluate, save checkpoints/swa.pt."""
        self.swa.update_bn()
        averaged = self.swa.model.module
        if self.dist.active:  # each rank saw its shard: average the BN statistics; the store rank records
            average_buffers(averaged, self.dist)
            if not self.dist.is_store:
                return
        res, base = self.eval_model(averaged), self.eval_model()
        rows = [(self.step, "swa_test_acc", res.acc), (self.step, "swa_test_loss", res.loss)]
        if self.parts.val_x.shape[0]:  # what a sweep ranks an SWA trial by (never its test figure)
            val = self.eval_model(averaged, split="val")
            rows += [(self.step, "swa_val_acc", val.acc), (self.step, "swa_val_loss", val.loss)]
        if self.store:
            path = ckpt.path_for(self.store.checkpoints, "swa")
            self.writer.write({"model": averaged.state_dict(), "step": self.step}, [path])
            self.sink.metrics(rows, self.steps_per_epoch)
            self.sink.result(SWAResult(base_acc=base.acc, base_loss=base.loss, swa_acc=res.acc,
                                       delta=res.acc - base.acc, test_acc=res.acc, test_loss=res.loss,
                                       epochs=self.epoch - (self.swa_start or 0), step=self.step,
                                       checkpoint=path.name), step=self.step, checkpoint=path.name)
        self.event("swa_finished", f"SWA model: test_acc={res.acc:.4f}")
