"""The training loop: data on the device, batched augmentation, AMP step, metrics without host sync.

One `Trainer` holds the run's state (model, optimizer, schedule, step) so that commands from the
run store (stop, pause, checkpoint, set-lr, swa) act on it at step boundaries. Step metrics are
accumulated on the device and read in one transfer every `monitor.every` steps.

Under torchrun (`dist` active, see engine/distributed.py) the same loop runs on every rank: the
model is wrapped in DistributedDataParallel (`self.model` stays the plain module that checkpoints
and evaluation use), each rank trains on its slice of every global batch, the metrics window is
all-reduced at each flush, commands are exchanged at the same flush (so they take effect at the
next `monitor.every` boundary), and only the store rank (`self.run` is None elsewhere) writes the
run store, evaluates and writes checkpoints.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .augment import Augmenter
from .contracts import (Checkpoint, Command, Continue, HardestResult, HardExample, Pause, SetLR, StartSWA, Stop,
                        SWAResult, command_args)
from .data import DeviceLoader, load_dataset
from .distributed import (DistContext, ShardedLoader, average_buffers, convert_sync_bn, device_for, rank_seed,
                          sync_window, wrap_model)
from .evaluate import autocast_for, evaluate
from .instruments import Instruments
from .models import build_model
from .optim import base_lr, build_optimizer, build_scheduler, set_base_lr, set_swa_lr, swa_base_lr
from .spec import RunSpec
from .store import PendingCommand, Run


class DeviceError(RuntimeError):
    """The device the spec asks for is not available."""


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("train.device is 'cuda' but no CUDA device is available; set train.device=auto or cpu")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_amp(amp: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler). AMP runs on CUDA only; CPU trains in fp32."""
    if device.type != "cuda" or amp == "off":
        return None, False
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return (torch.bfloat16, False) if amp == "bf16" else (torch.float16, True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


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


class StopRun(Exception):
    """Raised inside the loop to end the run early with a state and reason."""

    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason


class Trainer:
    """Builds everything from the spec and runs `fit()`; `run` (the store) is optional."""

    def __init__(self, spec: RunSpec, run: Run | None = None, log: Callable[[str], None] = print,
                 dist: DistContext | None = None, sync_bn: bool = False):
        """`dist`: this process's place in a torchrun job (None: a single process); `run` must then be
        None on every rank but the store rank. `sync_bn`: SyncBatchNorm under DDP (CUDA only)."""
        self.spec, self.run, self.log = spec, run, log
        self.dist = dist = dist or DistContext()
        t = spec.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = device_for(t.device, dist)
        self.amp_dtype, use_scaler = resolve_amp(t.amp, self.device)
        self.channels_last = t.channels_last and self.device.type == "cuda"
        seed_everything(t.seed)

        self.data = load_dataset(spec.data, t.seed, self._progress)
        d = self.data
        if dist.active:  # t.batch_size is the global batch; each rank takes its slice of every batch
            self.train_loader: DeviceLoader = ShardedLoader(d.train_x, d.train_y, t.batch_size, self.device, seed=t.seed,
                                                            rank=dist.rank, world_size=dist.world_size)
        else:
            self.train_loader = DeviceLoader(d.train_x, d.train_y, t.batch_size, self.device, shuffle=True,
                                             drop_last=d.train_x.shape[0] >= t.batch_size, seed=t.seed)
        self.test_x, self.test_y = d.test_x.to(self.device), d.test_y.to(self.device)
        self.val_x, self.val_y = d.val_x.to(self.device), d.val_y.to(self.device)
        self.augment = Augmenter(spec.augment, d.mean, d.std)

        self.model = build_model(spec.model, d.num_classes).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp: torch.nn.Module | None = None
        if dist.active:
            if sync_bn or t.sync_bn:
                self.model = convert_sync_bn(self.model, self.device)
            torch.manual_seed(rank_seed(t.seed, dist.rank))  # same weights everywhere, own augmentation stream
            self.ddp = wrap_model(self.model, self.device)
        self._eager = self.ddp if self.ddp is not None else self.model  # the forward that hooks can watch
        self.optimizer = build_optimizer(self.model, spec)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = t.epochs * self.steps_per_epoch
        self.scheduler = build_scheduler(self.optimizer, spec, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.forward = torch.compile(self._eager) if t.compile else self._eager
        self.instruments = Instruments(self.model, spec.monitor, self.device, grad_clip=t.grad_clip)
        buffers = [b for b in self.model.buffers() if b.is_floating_point() or b.dtype == torch.long]
        self._buffers = Snapshot(buffers) if buffers else None
        self._trained_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self._data_events = [torch.cuda.Event(enable_timing=True) for _ in range(2)] if self.device.type == "cuda" else []
        self.tb = None
        if spec.monitor.tensorboard and run is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run.path / "tb"))

        self.swa_model: torch.optim.swa_utils.AveragedModel | None = None
        self.swa_scheduler: torch.optim.swa_utils.SWALR | None = None
        self.swa_start = spec.swa_start_epoch() if spec.swa.enabled else None

        self.step = 0  # optimizer steps taken
        self.epoch = 0  # current epoch (0-based)
        self.batch_in_epoch = 0  # next batch of the current epoch
        self.best_acc = -1.0
        self.paused = False
        self.stop_request: tuple[str, str] | None = None  # (state, reason) set by a signal or command
        self._agreed_stop: tuple[str, str] | None = None  # under DDP: the stop every rank has agreed on
        self._inbox: list[PendingCommand] = []  # under DDP: commands read, not yet shared
        self._last_poll = 0.0
        self._window_start = time.perf_counter()
        self._reset_window()

    # -- helpers ------------------------------------------------------------------------------

    def _progress(self, desc: str, done: int, total: int) -> None:
        if done == total or done % max(total // 10, 1) == 0:
            self.log(f"{desc}: {done}/{total}")

    def _event(self, kind: str, message: str, level: str = "info", **data: Any) -> None:
        self.log(f"[{level}] {kind}: {message}")
        if self.run:
            self.run.add_event(kind, message, level=level, step=self.step, **data)

    def _reset_window(self) -> None:
        z = torch.zeros((), device=self.device)
        self._loss_sum, self._correct, self._window_n = z.clone(), z.clone(), z.clone()
        self._window_steps, self._data_time = 0, 0.0

    @property
    def epoch_float(self) -> float:
        return self.step / max(self.steps_per_epoch, 1)

    def current_lr(self) -> float:
        """The base LR in force now (a layer's LR is this times its multiplier)."""
        g = self.optimizer.param_groups[0]
        return g["lr"] / g.get("lr_mult", 1.0)

    def lr_by_layer(self) -> dict[str, float]:
        return {g["layer"]: g["lr"] for g in self.optimizer.param_groups}

    # -- the step -----------------------------------------------------------------------------

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One optimizer step; everything it measures stays on the device.

        A step with a non-finite loss or gradient is skipped on the device and leaves the model
        exactly as if it never happened: weights, optimizer state and BN running statistics."""
        t, inst = self.spec.train, self.instruments
        step = self.step + 1
        timing = self.device.type == "cuda" and self._window_steps == 0
        if timing:
            self._data_events[0].record()
        t0 = time.perf_counter()
        x = self.augment.train(xb)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if timing:
            self._data_events[1].record()
        self._data_time += time.perf_counter() - t0  # exact on CPU; CUDA uses the events
        buffers = self._buffers.save() if self._buffers else None  # the forward moves BN running stats
        sampled = inst.due(self.spec.monitor.activations_every, step)
        forward = self._eager if sampled else self.forward  # hooks run eagerly, never in a compiled graph
        with inst.watch_activations(step), autocast_for(self.device, self.amp_dtype):
            logits = forward(x)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=t.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.optimizer)
            # fp16 overflow is the scaler's business; only a non-finite loss counts toward the stop
            skip = inst.after_backward(step, ~torch.isfinite(loss.detach()))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            skip = inst.after_backward(step)
            self._optimizer_step(skip)
        if buffers is not None:
            buffers.restore_if(skip)
        inst.after_step(step)
        inst.on_logits(step, logits, yb)
        self._trained_lrs = [g["lr"] for g in self.optimizer.param_groups]  # before the scheduler moves it
        if self.swa_scheduler is not None:
            self.swa_scheduler.step()
        else:
            self.scheduler.step()
        self.step = step
        ok = (~skip).float()
        self._loss_sum += torch.where(skip, 0.0, loss.detach()) * yb.shape[0]
        self._correct += (logits.detach().argmax(1) == yb).sum() * ok
        self._window_n += ok * yb.shape[0]
        self._window_steps += 1

    def _optimizer_step(self, skip: torch.Tensor) -> None:
        """Step, skipped on the device where `skip` is set: fused kernels through `found_inf`; the
        others (RMSprop) step, then get their weights and state back."""
        opt = self.optimizer
        if getattr(opt, "_step_supports_amp_scaling", False):
            opt.grad_scale, opt.found_inf = None, skip.float()
            opt.step()
            return
        saved = Snapshot(list(self.instruments.params) + [
            v for st in opt.state.values() for v in st.values()
            if isinstance(v, torch.Tensor) and v.device == skip.device]).save()
        opt.step()
        saved.restore_if(skip)

    def flush_window(self) -> None:
        """One host transfer for the window's metrics; rows go to the store in one transaction."""
        if self._window_steps == 0:
            return
        if self.dist.active:
            self._sync_window()
        (loss_sum, correct, n), rows3 = self.instruments.collect([self._loss_sum, self._correct, self._window_n])
        now = time.perf_counter()
        elapsed = max(now - self._window_start, 1e-9)
        steps = self._window_steps
        images = steps * self.spec.train.batch_size
        w = self.instruments.window
        groups = self.optimizer.param_groups
        rows = [
            ("lr", self._trained_lrs[0] / groups[0].get("lr_mult", 1.0)),  # what the window's last step used
            ("images_per_s", images / elapsed),
            ("step_time_ms", 1000 * elapsed / steps),
        ]
        skipped = round(w["skipped_steps"])
        if skipped < steps:  # the grad norms of the finite steps
            rows += [("grad_norm", w["grad_norm"]), ("grad_norm_max", w["grad_norm_max"])]
        if n > 0:
            rows += [("train_loss", loss_sum / n), ("train_acc", correct / n)]
        self.instruments.skipped_total += skipped
        if self.instruments.skipped_total:
            rows += [("skipped_steps", skipped), ("skipped_total", self.instruments.skipped_total)]
        if skipped:
            self._event("nonfinite", f"{skipped} step(s) with a non-finite loss or gradient "
                        f"skipped before step {self.step}", level="error")
        layers = {g["layer"]: lr for g, lr in zip(groups, self._trained_lrs)}
        if len(layers) > 1:
            rows += [(f"lr/{k}", v) for k, v in layers.items()]
        if self.device.type == "cuda":
            rows.append(("memory_gb", torch.cuda.max_memory_allocated(self.device) / 2**30))
            rows.append(("data_time_ms", self._data_events[0].elapsed_time(self._data_events[1])))
        else:
            rows.append(("data_time_ms", 1000 * self._data_time / steps))
        if self.scaler.is_enabled():
            rows.append(("loss_scale", self.scaler.get_scale()))
        out = [(self.step, k, v) for k, v in rows] + rows3
        for kind, level, message in self.instruments.alarms(rows3):
            self._event(kind, message, level=level)
        if self.run:
            self.run.add_metrics((s, s / max(self.steps_per_epoch, 1), k, v) for s, k, v in out)
        if self.tb:
            for s, k, v in out:
                self.tb.add_scalar(k, v, s)
        self._reset_window()
        self._window_start = now
        if w["nonfinite_streak"] >= self.spec.monitor.nonfinite_limit:
            raise StopRun("failed", f"{int(w['nonfinite_streak'])} non-finite steps in a row "
                          f"(monitor.nonfinite_limit={self.spec.monitor.nonfinite_limit}); the last good checkpoint is intact")

    def _sync_window(self) -> None:
        """DDP: one all-reduce per window. Loss, correct and sample counts are summed over the ranks;
        the instruments' values (grad norms are already equal after DDP's allreduce; activation and
        difficulty statistics are per-rank) are averaged, so every rank reads the same numbers."""
        inst = self.instruments
        means = [inst._gnorm_sum, inst._gnorm_max, inst._skipped, inst._streak] + [v for _, _, v in inst.pending.rows]
        sync_window(self.dist, [self._loss_sum, self._correct, self._window_n], means)

    # -- evaluation and checkpoints -----------------------------------------------------------

    def eval_model(self, model: torch.nn.Module | None = None, split: str = "test"):
        x, y = (self.test_x, self.test_y) if split == "test" else (self.val_x, self.val_y)
        return evaluate(model or self.model, x, y, self.spec.train.eval_batch_size, self.augment.eval,
                        self.amp_dtype, self.channels_last)

    def evaluate_epoch(self) -> None:
        """Evaluate and record (the store rank only, under DDP); every rank learns the selection score."""
        select = self._evaluate_and_record() if self.dist.is_store else None
        select = self.dist.broadcast_object(select)
        if select > self.best_acc:
            self.best_acc = select
            self.save("best")

    def _evaluate_and_record(self) -> float:
        rows = []
        test = self.eval_model()
        rows += [("test_loss", test.loss), ("test_acc", test.acc)]
        select = test.acc
        if self.val_x.shape[0]:
            val = self.eval_model(split="val")
            rows += [("val_loss", val.loss), ("val_acc", val.acc)]
            select = val.acc
        if self.run:
            self.run.add_metrics((self.step, self.epoch_float, k, v) for k, v in rows)
            k = min(self.spec.evaluate.hardest, test.targets.numel())
            if k:
                losses = F.cross_entropy(test.logits, test.targets, reduction="none")
                top = losses.topk(k)
                preds = test.logits.argmax(1)[top.indices]
                self.run.add_result(HardestResult(examples=[
                    HardExample(index=i, label=lbl, pred=pr, loss=ls)
                    for i, lbl, pr, ls in zip(top.indices.tolist(), test.targets[top.indices].tolist(),
                                               preds.tolist(), top.values.tolist())]), step=self.step)
        if self.tb:
            for k, v in rows:
                self.tb.add_scalar(k, v, self.step)
            for name, params in self.instruments.groups.items():
                self.tb.add_histogram(f"weights/{name}", torch.cat([p.detach().reshape(-1) for p in params]).float().cpu(), self.step)
        self.log(f"epoch {self.epoch}/{self.spec.train.epochs} step {self.step}: "
                 + " ".join(f"{k}={v:.4f}" for k, v in rows))
        return select

    def state_dict(self) -> dict[str, Any]:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_acc": self.best_acc,
            "skipped_total": self.instruments.skipped_total,
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                    "python_pos": random.getstate()[2]},
        }
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dist.active:  # every rank's RNG (its own augmentation stream), gathered on every rank
            state["rng_ranks"] = self.dist.all_gather_object(state["rng"])
            state["world_size"] = self.dist.world_size
        if self.swa_model is not None:
            state["swa_model"] = self.swa_model.state_dict()
            state["swa_scheduler"] = self.swa_scheduler.state_dict() if self.swa_scheduler else {}
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by `state_dict()` (same spec)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch, self.best_acc = int(state["batch_in_epoch"]), float(state["best_acc"])
        self.instruments.skipped_total = int(state.get("skipped_total", 0))
        rng = state["rng"]
        ranks = state.get("rng_ranks")
        own = bool(ranks) and len(ranks) == self.dist.world_size
        if own:
            rng = ranks[self.dist.rank]
        torch.set_rng_state(rng["torch"].cpu())
        random.setstate((3, tuple(rng["python"]), rng["python_pos"]))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        if self.dist.active and not own:  # written by another number of processes: fresh, distinct streams
            torch.manual_seed(rank_seed(self.spec.train.seed + self.step, self.dist.rank))
        if "swa_model" in state:
            self.start_swa("resumed")
            self.swa_model.load_state_dict(state["swa_model"])
            if state.get("swa_scheduler"):
                self.swa_scheduler.load_state_dict(state["swa_scheduler"])

    def resume(self) -> Path:
        """Load the run's last good checkpoint and drop metrics past it (curves never duplicate)."""
        if self.dist.active:
            return self._resume_distributed()
        assert self.run is not None
        for stale in ckpt.clean_temp_files(self.run.checkpoints):
            self._event("checkpoint_cleanup", f"removed {stale.name}, left by a crash mid-write", level="warning")
        state, used, problems = ckpt.load_latest_good(ckpt.path_for(self.run.checkpoints, "last"), self.device)
        for problem in problems:
            self._event("checkpoint_corrupt", problem, level="warning")
        self.load_state(state)
        self.run.truncate_after(self.step)
        self._event("resumed_run", f"resumed from {used.name} at step {self.step} (epoch {self.epoch + 1}, "
                    f"batch {self.batch_in_epoch})")
        return used

    def _resume_distributed(self) -> Path:
        """The store rank loads the checkpoint and sends it to every rank (other nodes need no copy)."""
        payload = None
        if self.run:
            for stale in ckpt.clean_temp_files(self.run.checkpoints):
                self._event("checkpoint_cleanup", f"removed {stale.name}, left by a crash mid-write", level="warning")
            try:
                state, used, problems = ckpt.load_latest_good(ckpt.path_for(self.run.checkpoints, "last"), "cpu")
                payload = (state, used.name, problems, "")
            except ckpt.CheckpointError as exc:
                payload = (None, "", [], str(exc))
        state, used_name, problems, error = self.dist.broadcast_object(payload)
        if error:
            raise ckpt.CheckpointError(error)
        for problem in problems:
            self._event("checkpoint_corrupt", problem, level="warning")
        self.load_state(state)
        if self.run:
            self.run.truncate_after(self.step)
        self._event("resumed_run", f"resumed from {used_name} at step {self.step} (epoch {self.epoch + 1}, "
                    f"batch {self.batch_in_epoch}) on {self.dist.describe()}")
        return self.run.checkpoints / used_name if self.run else Path(used_name)

    def save(self, kind: str) -> Path | None:
        """Write a checkpoint (under DDP: every rank calls this at the same step; the store rank writes)."""
        if not self.run and not self.dist.active:
            return None
        state = self.state_dict()
        if not self.run:
            return None
        path = ckpt.path_for(self.run.checkpoints, kind)
        ckpt.save_atomic(state, path)
        return path

    # -- commands -----------------------------------------------------------------------------

    def poll_commands(self, force: bool = False) -> None:
        """Read pending commands at most every 0.25 s (time-based, so it costs nothing per step).

        Under DDP the store rank only collects them here; `sync_commands` shares and applies them."""
        now = time.monotonic()
        if not self.run or (not force and now - self._last_poll < 0.25):
            return
        self._last_poll = now
        pending = self.run.pending_commands()
        for bad in (p for p in pending if p.command is None):
            self._refuse(bad)
        good = [p for p in pending if p.command is not None]
        if self.dist.active:
            seen = {p.id for p in self._inbox}
            self._inbox += [p for p in good if p.id not in seen]
            return
        for p in good:
            self._apply(p)

    def _refuse(self, pending: PendingCommand) -> None:
        """A malformed command row is acknowledged as failed and logged; training goes on."""
        self.run.ack_command(pending.id, "failed", pending.error)
        self._event("command_failed", f"{pending.kind}: {pending.error}", level="warning")

    def _apply(self, pending: PendingCommand) -> None:
        """Handle one command and acknowledge it (the store rank acknowledges); a failing command
        is answered with its error and never kills the run."""
        try:
            reply = self.handle_command(pending.command)
            if self.run:
                self.run.ack_command(pending.id, "done", reply)
        except Exception as exc:  # a bad command must not kill the run
            if self.run:
                self.run.ack_command(pending.id, "failed", str(exc))
            self._event("command_failed", f"{pending.kind}: {exc}", level="warning")

    def sync_commands(self) -> None:
        """DDP, at a window boundary: the store rank's commands and every rank's stop request (from a
        signal) go to all ranks in one exchange, and every rank applies them at this same step."""
        gathered = self.dist.all_gather_object((self._inbox if self.run else [], self.stop_request))
        self._inbox = []
        agreed = next((stop for _, stop in gathered if stop), None)
        for p in gathered[self.dist.store_rank][0]:
            self._apply(p)
            if isinstance(p.command, Stop) and agreed is None:
                agreed = ("stopped", p.command.reason)
        if agreed is not None:
            self._agreed_stop = agreed
            self.stop_request = self.stop_request or agreed

    def handle_command(self, command: Command) -> str:
        """Act on one typed command between two steps; the return value is the worker's reply."""
        if isinstance(command, Stop):
            self.stop_request = ("stopped", command.reason)
            return "stopping at the next step boundary"
        if isinstance(command, Pause):
            if not self.paused:
                self.paused = True
                self.run and self.run.set_meta(state="paused")
                self._event("paused", "training paused")
            return "paused"
        if isinstance(command, Continue):
            if self.paused:
                self.paused = False
                self.run and self.run.set_meta(state="running")
                self._event("continued", "training continued")
            return "running"
        if isinstance(command, Checkpoint):
            path = self.save("last")
            self._event("checkpoint", f"checkpoint written: {path}")
            return str(path)
        if isinstance(command, SetLR):
            return self._set_lr(command)
        if isinstance(command, StartSWA):
            self.start_swa("command")
            return "SWA started; the averaged model is evaluated and saved when training ends"
        if self.dist.active and not self.run:
            return ""  # a pass is the store rank's business; the model is the same everywhere
        from .passes import pass_summary, run_pass

        options = command_args(command)
        return pass_summary(run_pass(self.run, command.kind, trainer=self, log=self.log, **options))

    def _set_lr(self, command: SetLR) -> str:
        """Base LR or a layer's multiplier, live. While SWA runs it sets the SWA LR (SWALR would
        overwrite a change to the schedule's LR at the next step)."""
        swa = self.swa_scheduler is not None
        current = swa_base_lr(self.optimizer) if swa else base_lr(self.optimizer, self.scheduler)
        lr = command.lr if command.lr is not None else current
        layer, mult = command.layer, command.mult
        if layer is not None and layer not in self.lr_by_layer():
            raise ValueError(f"no param group {layer!r}; groups: {', '.join(self.lr_by_layer())}")
        if swa:
            set_swa_lr(self.optimizer, lr, layer, mult)
        else:
            set_base_lr(self.optimizer, self.scheduler, lr, layer, mult)
        what = f"layer {layer} multiplier {mult}" if layer else f"{'SWA' if swa else 'base'} LR {lr:g}"
        self._event("set_lr", f"{what} (was set live)", lr=lr, layer=layer, mult=mult, swa=swa)
        return what

    # -- SWA -----------------------------------------------------------------------------------

    def start_swa(self, why: str) -> None:
        if self.swa_model is not None:
            return
        from torch.optim.swa_utils import SWALR, AveragedModel

        s = self.spec.swa
        self.swa_model = AveragedModel(self.model)
        for g in self.optimizer.param_groups:  # a resumed run keeps an SWA LR that was set live
            g.setdefault("swa_lr", s.lr * g.get("lr_mult", 1.0))
        self.swa_scheduler = SWALR(self.optimizer, swa_lr=[g["swa_lr"] for g in self.optimizer.param_groups],
                                   anneal_epochs=max(s.anneal_epochs * self.steps_per_epoch, 1),
                                   anneal_strategy=s.anneal_strategy)
        self._event("swa_started", f"SWA started at epoch {self.epoch + 1} ({why})")

    # -- the loop ------------------------------------------------------------------------------

    def fit(self) -> str:
        """Train to the end (or a stop); returns the end state: finished or stopped."""
        spec = self.spec
        every = spec.monitor.every
        self._event("started", f"training {spec.model.name} on {self.data.name} ({self.device})",
                    steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)
        if self.run:
            device = device_name(self.device)
            if self.dist.active:
                device += f" x {self.dist.describe()}"
            self.run.set_meta(state="running", total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                              epochs=spec.train.epochs, device=device)
        state, reason = "finished", "done"
        try:
            while self.epoch < spec.train.epochs:
                if self.swa_start is not None and self.epoch >= self.swa_start:
                    self.start_swa("spec")
                self._window_start = time.perf_counter()
                for xb, yb, _ in self.train_loader.epoch_batches(self.epoch, self.batch_in_epoch):
                    self.train_step(xb, yb)
                    self.batch_in_epoch += 1
                    boundary = self.step % every == 0
                    if boundary:
                        self.flush_window()
                    self.poll_commands()
                    if self.dist.active:
                        self._distributed_boundary(boundary)
                        continue
                    while self.paused and not self.stop_request:
                        time.sleep(0.1)
                        self.poll_commands(force=True)
                        self._window_start = time.perf_counter()
                    if self.stop_request:
                        raise StopRun(*self.stop_request)
                self.flush_window()
                if self.swa_model is not None:
                    self.swa_model.update_parameters(self.model)
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.epoch % spec.evaluate.every == 0 or self.epoch == spec.train.epochs:
                    self.evaluate_epoch()
                if self.epoch % spec.train.checkpoint_every == 0:
                    self.save("last")
        except StopRun as stop:
            state, reason = stop.state, stop.reason
            if state == "stopped":
                self.flush_window()
                self.save("last")
        if self.swa_model is not None and state != "failed":
            self.finish_swa()
        if state == "finished":
            self.save("last")
        if self.tb:
            self.tb.close()
        self._event(state, reason, level="error" if state == "failed" else "info")
        return state

    def _distributed_boundary(self, boundary: bool) -> None:
        """DDP: commands and stops act only where every rank meets (a window boundary, or while paused)."""
        if boundary:
            self.sync_commands()
        while self.paused and not self._agreed_stop:
            time.sleep(0.1)
            self.poll_commands(force=True)
            self.sync_commands()
            self._window_start = time.perf_counter()
        if self._agreed_stop:
            raise StopRun(*self._agreed_stop)

    def finish_swa(self) -> None:
        """Recompute BN statistics for the averaged weights on un-augmented train data, evaluate, save."""
        from torch.optim.swa_utils import update_bn

        assert self.swa_model is not None
        loader = (self.augment.eval(xb) for xb, _, _ in self.train_loader.epoch_batches(0))
        with autocast_for(self.device, self.amp_dtype):
            update_bn(loader, self.swa_model, device=self.device)
        if self.dist.active:  # each rank saw its shard: average the BN statistics; the store rank records
            average_buffers(self.swa_model.module, self.dist)
            if not self.dist.is_store:
                return
        res = self.eval_model(self.swa_model.module)
        base = self.eval_model()
        if self.run:
            path = ckpt.path_for(self.run.checkpoints, "swa")
            ckpt.save_atomic({"model": self.swa_model.module.state_dict(), "step": self.step}, path)
            self.run.add_metrics([(self.step, self.epoch_float, "swa_test_acc", res.acc),
                                  (self.step, self.epoch_float, "swa_test_loss", res.loss)])
            self.run.add_result(SWAResult(base_acc=base.acc, base_loss=base.loss, swa_acc=res.acc,
                                          delta=res.acc - base.acc, test_acc=res.acc, test_loss=res.loss,
                                          epochs=self.epoch - (self.swa_start or 0), step=self.step,
                                          checkpoint=path.name),
                                step=self.step, checkpoint=str(path.name))
        self._event("swa_finished", f"SWA model: test_acc={res.acc:.4f}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
