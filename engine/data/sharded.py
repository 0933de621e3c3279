"""A data-parallel rank's share of the training set: every rank walks the same global batches and
takes its own slice of each, so a run on N processes sees the data a single process would."""

from __future__ import annotations

import torch

from .common import DataError
from .loader import DeviceLoader


class ShardedLoader(DeviceLoader):
    """A `DeviceLoader` over the global batch that yields only this rank's slice of each batch.

    Global batch g of epoch e is permutation(e)[g*B:(g+1)*B], the same on every rank (and the
    same as a single process with batch B); rank r takes [r*b:(r+1)*b] of it, b = B / world.
    `len()` is the number of global batches (the last partial one is dropped).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, global_batch: int, device: torch.device | str,
                 seed: int, rank: int, world_size: int):
        if global_batch % world_size:
            raise DataError(
                f"train.batch_size={global_batch} is the global batch and must divide by the {world_size} processes; "
                f"use a multiple of {world_size} (e.g. {max(global_batch // world_size, 1) * world_size})")
        if len(x) < global_batch:
            raise DataError(f"the training set has {len(x)} images, fewer than one global batch "
                                   f"(train.batch_size={global_batch}); lower the batch size")
        super().__init__(x, y, global_batch, device, shuffle=True, drop_last=True, seed=seed)
        self.rank, self.world_size = rank, world_size
        self.local_batch = global_batch // world_size

    @property
    def samples_per_epoch(self) -> int:
        """Images this rank sees per epoch."""
        return len(self) * self.local_batch

    def batch_bounds(self, b: int) -> tuple[int, int]:
        """This rank's slice of global batch `b`: every rank shares the epoch order, each takes its part."""
        lo = b * self.batch_size + self.rank * self.local_batch
        return lo, lo + self.local_batch
