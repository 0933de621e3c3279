"""A run's state in a checkpoint: weights, optimizer, schedule, scaler, position, RNG streams, SWA;
writing it atomically, and continuing a run from its last good checkpoint."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Protocol

import torch

from .. import checkpoint as ckpt
from ..checkpoint_writer import CheckpointWriter
from ..instruments import Instruments
from ..runtime.distributed import rank_seed
from ..setup import Components
from ..store import Run
from .swa import SWA


class Trainer(Protocol):
    """What a checkpoint holds of the loop (engine.train.loop.Trainer)."""

    parts: Components
    instruments: Instruments
    swa: SWA
    store: Run | None
    writer: CheckpointWriter
    step: int
    epoch: int
    batch_in_epoch: int
    best_acc: float

    def event(self, kind: str, message: str, level: str = "info", **data: Any) -> None: ...


def state_dict(tr: Trainer) -> dict[str, Any]:
    """Everything needed to continue bit-exactly (under DDP: every rank calls this at the same step)."""
    p = tr.parts
    state = {
        "model": p.model.state_dict(),
        "optimizer": p.optimizer.state_dict(),
        "scheduler": p.scheduler.state_dict(),
        "scaler": p.scaler.state_dict(),
        "step": tr.step,
        "epoch": tr.epoch,
        "batch_in_epoch": tr.batch_in_epoch,
        "best_acc": tr.best_acc,
        "skipped_total": tr.instruments.skipped_total,
        "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                "python_pos": random.getstate()[2]},
    }
    if p.device.type == "cuda":
        state["rng"]["cuda"] = torch.cuda.get_rng_state(p.device)
    if p.dist.active:  # every rank's RNG (its own augmentation stream), gathered on every rank
        state["rng_ranks"] = p.dist.all_gather_object(state["rng"])
        state["world_size"] = p.dist.world_size
    if tr.swa.active:
        state.update(tr.swa.state_dict())
    if getattr(tr, "lookahead", None):
        state.update(tr.lookahead.state_dict())
    return state


def load_state(tr: Trainer, state: dict[str, Any]) -> None:
    """Continue from a checkpoint written by `state_dict()` (same spec)."""
    load_parts(tr.parts, state)
    tr.step, tr.epoch = int(state["step"]), int(state["epoch"])
    tr.batch_in_epoch, tr.best_acc = int(state["batch_in_epoch"]), float(state["best_acc"])
    tr.instruments.skipped_total = int(state.get("skipped_total", 0))
    if getattr(tr, "lookahead", None):
        tr.lookahead.load_state_dict(state)
    if "swa_model" in state:
        tr.swa.load_state_dict(state)
        tr.event("swa_started", f"SWA started at epoch {tr.epoch + 1} (resumed)", why="resumed")


def load_parts(p: Components, state: dict[str, Any]) -> None:
    """Weights, optimizer, schedule, scaler and the random streams from a checkpoint (same spec)."""
    p.model.load_state_dict(state["model"])
    p.optimizer.load_state_dict(state["optimizer"])
    p.scheduler.load_state_dict(state["scheduler"])
    p.scaler.load_state_dict(state["scaler"])
    rng = state["rng"]
    ranks = state.get("rng_ranks")
    own = bool(ranks) and len(ranks) == p.dist.world_size
    if own:
        rng = ranks[p.dist.rank]
    torch.set_rng_state(rng["torch"].cpu())
    random.setstate((3, tuple(rng["python"]), rng["python_pos"]))
    if "cuda" in rng and p.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"].cpu(), p.device)
    if p.dist.active and not own:  # written by another number of processes: fresh, distinct streams
        torch.manual_seed(rank_seed(p.spec.train.seed + int(state["step"]), p.dist.rank))


def save(tr: Trainer, *kinds: str) -> Path | None:
    """Queue checkpoints/<kind>.pt for each kind (one state, written by `tr.writer` off this thread);
    the first path. Under DDP every rank calls this at the same step, the store rank writes."""
    store = tr.store
    if not store and not tr.parts.dist.active:
        return None
    state = state_dict(tr)
    if not store:
        return None
    paths = [ckpt.path_for(store.checkpoints, kind) for kind in kinds]
    tr.writer.write(state, paths)
    return paths[0]


def _latest_good(tr: Trainer, map_location: str | torch.device) -> tuple[dict[str, Any], Path, list[str]]:
    """The store's last good checkpoint, after removing temp files a crash left mid-write."""
    for stale in ckpt.clean_temp_files(tr.store.checkpoints):
        tr.event("checkpoint_cleanup", f"removed {stale.name}, left by a crash mid-write", level="warning")
    return ckpt.load_latest_good(ckpt.path_for(tr.store.checkpoints, "last"), map_location)


def resume(tr: Trainer) -> Path:
    """Load the run's last good checkpoint and drop metrics past it (curves never duplicate). Under
    DDP the store rank loads it and sends it to every rank (other nodes need no copy)."""
    dist = tr.parts.dist
    if dist.active:
        payload = None
        if tr.store:
            try:
                state, used, problems = _latest_good(tr, "cpu")
                payload = (state, used.name, problems, "")
            except ckpt.CheckpointError as exc:
                payload = (None, "", [], str(exc))
        state, used_name, problems, error = dist.broadcast_object(payload)
        if error:
            raise ckpt.CheckpointError(error)
        where = f" on {dist.describe()}"
    else:
        assert tr.store is not None
        state, used, problems = _latest_good(tr, tr.parts.device)
        used_name, where = used.name, ""
    for problem in problems:
        tr.event("checkpoint_corrupt", problem, level="warning")
    load_state(tr, state)
    if tr.store:
        tr.store.truncate_after(tr.step)
    tr.event("resumed_run", f"resumed from {used_name} at step {tr.step} (epoch {tr.epoch + 1}, "
             f"batch {tr.batch_in_epoch}){where}")
    return tr.store.checkpoints / used_name if tr.store else Path(used_name)
