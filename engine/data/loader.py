"""A loader that keeps a whole data set on the device and batches it there."""

from __future__ import annotations

from typing import Iterator

import torch

from .common import mix_seed



class DeviceLoader:
    """Batches from tensors that live on the device, moved there once.

    The order of an epoch is a pure function of (seed, epoch): a CPU generator draws the
    permutation and one transfer puts it on the device, so a run resumed at batch `start` sees
    exactly the batches it would have seen. No per-image Python, no host sync per batch.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        device: torch.device | str,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self._n = len(x)
        self._arange: torch.Tensor | None = None
        self._flip_start: torch.Tensor | None = None  # per image: flipped in even epochs (alternating flip)

    def use_alternate_flip(self) -> None:
        """airbench's flip: a seeded half of the images is flipped in even epochs, the other half in odd
        ones, so every image is seen both ways every two epochs (instead of a coin per image and epoch)."""
        g = torch.Generator().manual_seed(mix_seed(self.seed, 0xF11B))
        self._flip_start = (torch.rand(self._n, generator=g) < 0.5).to(self.device)

    def _flipped(self, xb: torch.Tensor, sl: torch.Tensor, epoch: int) -> torch.Tensor:
        if self._flip_start is None:
            return xb
        flip = self._flip_start[sl] ^ bool(epoch % 2)  # a device gather and compare: no host sync
        return torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)

    @property
    def num_samples(self) -> int:
        """Images in the underlying set."""
        return self._n

    @property
    def samples_per_epoch(self) -> int:
        """Images actually yielded per epoch (fewer than num_samples with drop_last)."""
        return len(self) * self.batch_size if self.drop_last else self._n

    def __len__(self) -> int:
        if self.drop_last:
            return self._n // self.batch_size
        return (self._n + self.batch_size - 1) // self.batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        """The epoch's order as dataset indices (on the device); identity when not shuffling."""
        if not self.shuffle:
            if self._arange is None:
                self._arange = torch.arange(self._n, device=self.device)
            return self._arange
        g = torch.Generator().manual_seed(mix_seed(self.seed, 0xD474, int(epoch)))
        perm = torch.randperm(self._n, generator=g)
        if self.device.type == "cuda":  # pinned + async: no wait for the previous epoch's kernels
            return perm.pin_memory().to(self.device, non_blocking=True)
        return perm.to(self.device)

    def batch_bounds(self, b: int) -> tuple[int, int]:
        """Positions [lo, hi) of batch `b` in the epoch's order (a sharded loader takes its slice)."""
        return b * self.batch_size, min(self._n, (b + 1) * self.batch_size)

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (xb, yb, idx) for the batches of `epoch` from batch number `start` on."""
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        nb = len(self)
        if start >= nb:
            return
        idx = self.permutation(epoch)
        for b in range(start, nb):
            lo, hi = self.batch_bounds(b)
            sl = idx[lo:hi]
            if self.shuffle:
                yield self._flipped(self.x[sl], sl, epoch), self.y[sl], sl
            else:  # contiguous views, no gather
                yield self._flipped(self.x[lo:hi], sl, epoch), self.y[lo:hi], sl

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return self.epoch_batches(0)

    def forever(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(xb, yb) epoch after epoch without end, for sweeps and benchmarks that count steps."""
        while True:
            for xb, yb, _ in self.epoch_batches(epoch):
                yield xb, yb
            epoch += 1
