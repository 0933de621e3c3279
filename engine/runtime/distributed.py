"""Data-parallel training through torchrun: the process group, the data shards, the collectives.

`cockpit run PRESET --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT]` starts the worker
through `python -m torch.distributed.run` (see `engine.launch.spawn`); every worker process reads
its place in the job from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, GROUP_RANK).

The rules, in one place:
- `train.batch_size` is the GLOBAL batch: each rank trains on batch_size / world_size images per
  step (an error if that does not divide). Every rank draws the same permutation of the train set
  from (seed, epoch) and takes its own disjoint slice of each global batch, so the ranks together
  see exactly the batches a single process would; the last partial batch of an epoch is dropped.
  Each rank keeps the (uint8) train set on its device and has its own augmentation stream.
- nccl on CUDA, gloo on CPU. DistributedDataParallel averages the gradients, so the grad norm,
  clipping and the non-finite skip are the same on every rank. SyncBatchNorm is optional (CUDA).
- One rank owns the run store (the "store rank": rank 0, or on several nodes the first rank on
  the node that hosts the rendezvous endpoint). It writes metrics, events, results and
  checkpoints, evaluates, and reads the commands table; the other ranks write nothing there.
- Commands and stop requests are exchanged once per `monitor.every` steps (at the window flush,
  where the metrics are all-reduced anyway), so every rank applies them at the same step.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

import torch

from ..contracts import UsageError
from .device import resolve_device


class DistributedError(UsageError, RuntimeError):
    """A data-parallel setup that cannot work (batch not divisible, SyncBN on CPU...): a usage error."""


@dataclass
class DistContext:
    """Where this process sits in the job. A default one is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0
    store_rank: int = 0
    backend: str = ""
    ranks: list[dict[str, Any]] = field(default_factory=list)  # per rank: host, pid, node, local rank
    head: bool = True  # on the node whose cockpit owns the run store (the launcher says so)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_store(self) -> bool:
        """This rank owns the run store."""
        return self.rank == self.store_rank

    # -- collectives (no-ops on a single process) ----------------------------------------------

    def all_gather_object(self, obj: Any) -> list[Any]:
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """The store rank's `obj` on every rank."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_store else None]
        dist.broadcast_object_list(box, src=self.store_rank)
        return box[0]

    def all_reduce_sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def describe(self) -> str:
        return f"{self.world_size} processes ({self.backend})" if self.active else "1 process"


def env_context(head: bool = True) -> DistContext:
    """The job as torchrun describes it in the environment (no process group yet); `head`: whether
    this node's cockpit owns the run store."""
    e = os.environ
    world = int(e.get("WORLD_SIZE", "1") or 1)
    if world <= 1:  # a plain process, whatever else the environment says
        return DistContext()
    return DistContext(rank=int(e.get("RANK", "0") or 0), world_size=world,
                       local_rank=int(e.get("LOCAL_RANK", "0") or 0),
                       local_world_size=int(e.get("LOCAL_WORLD_SIZE", "1") or 1),
                       node_rank=int(e.get("GROUP_RANK", "0") or 0), head=head)


def device_for(spec_device: str, ctx: DistContext) -> torch.device:
    """This rank's device: cuda:LOCAL_RANK when the spec's device resolves to CUDA, else the CPU."""
    device = resolve_device(spec_device)
    if device.type == "cuda" and ctx.active:
        if ctx.local_rank >= torch.cuda.device_count():
            raise DistributedError(f"local rank {ctx.local_rank} has no GPU: this node has {torch.cuda.device_count()} "
                                   f"CUDA device(s); lower --nproc-per-node to at most that")
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    return device


def init(ctx: DistContext, device: torch.device, timeout_s: float = 1800.0) -> DistContext:
    """Join the process group (nccl on CUDA, gloo on CPU) and choose the store rank."""
    if not ctx.active:
        return ctx
    import torch.distributed as dist

    ctx.backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": ctx.backend, "timeout": timedelta(seconds=timeout_s)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    ctx.ranks = ctx.all_gather_object({"rank": ctx.rank, "host": socket.gethostname(), "pid": os.getpid(),
                                       "node": ctx.node_rank, "local_rank": ctx.local_rank, "head": ctx.head})
    heads = [r["rank"] for r in ctx.ranks if r["head"] and r["local_rank"] == 0]
    ctx.store_rank = min(heads) if heads else 0
    return ctx


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (every rank has passed a barrier first, so no collective is in flight)."""
    if ctx.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def exit_rank(code: int) -> NoReturn:
    """End this rank's process now, without Python's finalization. The gloo worker threads outlive
    destroy_process_group (DDP's reducer keeps the group alive) and may still hold the last
    collectives' work, with tensors that have Python references; when the interpreter is torn down
    under them, freeing those aborts the process (`terminate called without an active exception`,
    SIGABRT) after a good run, and only under load, when a gloo thread runs late. Everything is
    recorded and flushed before this is called; the sink is closed by `fit`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def rank_seed(seed: int, rank: int) -> int:
    """A distinct, reproducible seed per rank for the augmentation stream."""
    return (seed * 0x9E3779B1 + 0x5EED * (rank + 1)) % (2**63)


# ------------------------------------------------------------------------------------ model


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `model` (which stays the module that checkpoints hold)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
               find_unused_parameters=False)


def convert_sync_bn(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if device.type != "cuda":
        raise DistributedError("SyncBatchNorm needs CUDA devices (nccl); on CPU (gloo) train without it "
                               "(drop --sync-bn / COCKPIT_SYNC_BN)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def sync_window(ctx: DistContext, sums: list[torch.Tensor], means: list[torch.Tensor]) -> list[torch.Tensor]:
    """One all-reduce for a metrics window: `sums` are summed over the ranks and `means` averaged,
    both in place; returns the averaged tensors (new ones where a view could not be written)."""
    if not ctx.active:
        return means
    parts = [t.detach().reshape(-1).float() for t in sums + means]
    flat = torch.cat(parts) if parts else torch.zeros(0)
    ctx.all_reduce_sum_(flat)
    out, pos = [], 0
    for i, t in enumerate(sums + means):
        n = t.numel()
        v = flat[pos:pos + n]
        pos += n
        if i >= len(sums):
            v = v / ctx.world_size
        t.copy_(v.reshape(t.shape).to(t.dtype))
        if i >= len(sums):
            out.append(t)
    return out


def average_buffers(model: torch.nn.Module, ctx: DistContext) -> None:
    """Average floating-point buffers (BN running statistics) over the ranks, in one all-reduce."""
    if not ctx.active:
        return
    bufs = [b for b in model.buffers() if b.is_floating_point()]
    if bufs:
        sync_window(ctx, [], bufs)
