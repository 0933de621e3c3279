"""The command router: commands from the run store act on the training loop between two steps.

Commands arrive typed (engine.contracts). Each is answered in the store: done with a reply, or
failed with the reason; a bad command never kills the run. Under DDP the store rank reads them
and they are shared with every rank at a window boundary, so every rank applies them at one step.
Finishing passes (calibrate, tta, confusion) on the live model are run by the `on_pass` handler
the worker gives, which keeps the loop free of the passes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Protocol

from ..checkpoint_writer import CheckpointWriter
from ..contracts import Checkpoint, Command, CommandError, Continue, Pause, SetLR, StartSWA, Stop
from ..optim import base_lr, set_base_lr, set_swa_lr, swa_base_lr
from ..setup import Components
from ..store import PendingCommand, Run
from .sink import Sink
from .swa import SWA


class Trainer(Protocol):
    """What commands act on (engine.train.loop.Trainer)."""

    parts: Components
    store: Run | None
    sink: Sink
    swa: SWA
    writer: CheckpointWriter
    paused: bool
    stop_request: tuple[str, str] | None

    def event(self, kind: str, message: str, level: str = "info", **data: Any) -> None: ...
    def save(self, *kinds: str) -> Path | None: ...
    def start_swa(self, why: str) -> None: ...


PassHandler = Callable[[Any, Command], str]  # (the trainer, a pass command) -> the reply


class CommandRouter:
    def __init__(self, trainer: Trainer, on_pass: PassHandler | None = None):
        self.trainer, self.on_pass = trainer, on_pass
        self.inbox: list[PendingCommand] = []  # under DDP: read, not yet shared with the other ranks
        self.agreed_stop: tuple[str, str] | None = None  # under DDP: the stop every rank has agreed on
        self._last_poll = 0.0

    def poll(self, force: bool = False) -> None:
        """Read pending commands at most every 0.25 s (time-based, so it costs nothing per step).
        Under DDP the store rank only collects them here; `sync` shares and applies them."""
        store, now = self.trainer.store, time.monotonic()
        if not store or (not force and now - self._last_poll < 0.25):
            return
        self._last_poll = now
        pending = store.pending_commands()
        for bad in (p for p in pending if p.command is None):
            store.ack_command(bad.id, "failed", bad.error)
            self.trainer.event("command_failed", f"{bad.kind}: {bad.error}", level="warning")
        good = []
        for p in (p for p in pending if p.command is not None):
            if store.take_command(p.id):  # never one its client gave up on (its deadline passed)
                good.append(p)
            else:
                self.trainer.event("command_expired", f"{p.kind}: its client gave up waiting; not executed",
                                   level="warning")
        if self.trainer.parts.dist.active:
            seen = {p.id for p in self.inbox}
            self.inbox += [p for p in good if p.id not in seen]
            return
        for p in good:
            self._apply(p)

    def sync(self) -> None:
        """DDP, at a window boundary: the store rank's commands and every rank's stop request (from a
        signal) go to all ranks in one exchange, and every rank applies them at this same step."""
        tr = self.trainer
        dist = tr.parts.dist
        gathered = dist.all_gather_object((self.inbox if tr.store else [], tr.stop_request))
        self.inbox = []
        agreed = next((stop for _, stop in gathered if stop), None)
        for p in gathered[dist.store_rank][0]:
            self._apply(p)
            if isinstance(p.command, Stop) and agreed is None:
                agreed = ("stopped", p.command.reason)
        if agreed is not None:
            self.agreed_stop = agreed
            tr.stop_request = tr.stop_request or agreed

    def _apply(self, pending: PendingCommand) -> None:
        """Handle one command and acknowledge it (the store rank acknowledges)."""
        store = self.trainer.store
        try:
            reply = self.handle(pending.command)
            if store:
                store.ack_command(pending.id, "done", reply)
        except Exception as exc:  # a bad command must not kill the run
            if store:
                store.ack_command(pending.id, "failed", str(exc))
            self.trainer.event("command_failed", f"{pending.kind}: {exc}", level="warning")

    def handle(self, command: Command) -> str:
        """Act on one typed command between two steps; the return value is the worker's reply."""
        tr = self.trainer
        if isinstance(command, Stop):
            tr.stop_request = ("stopped", command.reason)
            return "stopping at the next step boundary"
        if isinstance(command, (Pause, Continue)):
            return self._pause(isinstance(command, Pause))
        if isinstance(command, Checkpoint):
            path = tr.save("last")
            tr.writer.wait()  # the reply says written: it is on disk
            tr.event("checkpoint", f"checkpoint written: {path}")
            return str(path)
        if isinstance(command, SetLR):
            return self._set_lr(command)
        if isinstance(command, StartSWA):
            tr.start_swa("command")
            return "SWA started; the averaged model is evaluated and saved when training ends"
        if tr.parts.dist.active and not tr.store:
            return ""  # a pass is the store rank's business; the model is the same everywhere
        if self.on_pass is None:
            raise CommandError(f"{command.kind} on a live run is computed by its worker; this loop has no pass handler")
        tr.writer.wait()  # a pass may read the checkpoint being written
        return self.on_pass(tr, command)

    def _pause(self, pause: bool) -> str:
        tr = self.trainer
        if tr.paused != pause:
            tr.paused = pause
            tr.sink.meta(state="paused" if pause else "running")
            tr.event("paused" if pause else "continued", "training paused" if pause else "training continued")
        return "paused" if pause else "running"

    def _set_lr(self, command: SetLR) -> str:
        """Base LR or a layer's multiplier, live. While SWA runs it sets the SWA LR (SWALR would
        overwrite a change to the schedule's LR at the next step)."""
        p, swa = self.trainer.parts, self.trainer.swa.active
        current = swa_base_lr(p.optimizer) if swa else base_lr(p.optimizer, p.scheduler)
        lr = command.lr if command.lr is not None else current
        layer, mult = command.layer, command.mult
        layers = list(dict.fromkeys(g["layer"] for g in p.optimizer.param_groups))
        if layer is not None and layer not in layers:
            raise CommandError(f"no param group {layer!r}; groups: {', '.join(layers)}")
        if swa:
            set_swa_lr(p.optimizer, lr, layer, mult)
        else:
            set_base_lr(p.optimizer, p.scheduler, lr, layer, mult)
        what = f"layer {layer} multiplier {mult}" if layer else f"{'SWA' if swa else 'base'} LR {lr:g}"
        self.trainer.event("set_lr", f"{what} (was set live)", lr=lr, layer=layer, mult=mult, swa=swa)
        return what
