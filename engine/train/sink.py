"""Where a run's records go: the run store (plus TensorBoard), or nowhere.

The loop writes to a sink and never asks whether a store is there: a pass's scratch trainer, the
ranks other than the store rank, and the benchmarks train into `Sink()`, which drops everything.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Unpack

import torch

from ..contracts import ResultModel, RunMeta
from ..spec import RunSpec
from ..store import Run
from ..system import SystemSampler

Row = tuple[int, str, float]  # (step, metric name, value)


class Sink:
    """Records nothing; only the log line of an event is printed."""

    store: Run | None = None

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log

    def event(self, kind: str, message: str, *, level: str = "info", step: int = 0, **data: Any) -> None:
        self.log(f"[{level}] {kind}: {message}")

    def metrics(self, rows: Iterable[Row], steps_per_epoch: int) -> None:
        pass

    def weights(self, groups: dict[str, list[torch.nn.Parameter]], step: int) -> None:
        pass

    def result(self, result: ResultModel, *, step: int, checkpoint: str = "") -> None:
        pass

    def meta(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


class StoreSink(Sink):
    """The run store, and TensorBoard event files in `<run>/tb` when the spec asks for them."""

    def __init__(self, store: Run, spec: RunSpec, log: Callable[[str], None] = print,
                 cuda_indices: list[int] | None = None):
        """`cuda_indices`: the CUDA devices the run trains on (every local rank's under torchrun), for
        the system metrics sampled with the window's rows (engine/system.py); [] or None: no GPU."""
        super().__init__(log)
        self.store = store
        self.system = SystemSampler(cuda_indices or [], store.path)
        store.set_meta(gpus=self.system.gpus())
        self._training = False  # until the first rows: the worker's start-up phase (engine/phases.py) shows
        self.tb = None
        if spec.monitor.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(store.path / "tb"))

    def event(self, kind: str, message: str, *, level: str = "info", step: int = 0, **data: Any) -> None:
        super().event(kind, message, level=level, step=step)
        self.store.add_event(kind, message, level=level, step=step, **data)

    def metrics(self, rows: Iterable[Row], steps_per_epoch: int) -> None:
        rows = list(rows)
        if rows and not self._training:  # the first metrics: start-up is over
            self._training = True
            self.store.set_meta(phase=None)
        if rows:  # at most every few seconds: host-side reads, no device sync
            step = max(s for s, _, _ in rows)
            rows += [(step, k, v) for k, v in self.system.rows()]
        self.store.add_metrics((s, s / max(steps_per_epoch, 1), k, v) for s, k, v in rows)
        if self.tb:
            for s, k, v in rows:
                self.tb.add_scalar(k, v, s)

    def weights(self, groups: dict[str, list[torch.nn.Parameter]], step: int) -> None:
        if self.tb:
            for name, params in groups.items():
                self.tb.add_histogram(f"weights/{name}", torch.cat([p.detach().reshape(-1) for p in params]).float().cpu(),
                                      step)

    def result(self, result: ResultModel, *, step: int, checkpoint: str = "") -> None:
        self.store.add_result(result, step=step, checkpoint=checkpoint)

    def meta(self, **values: Unpack[RunMeta]) -> None:
        self.store.set_meta(**values)

    def close(self) -> None:
        self.system.close()
        if self.tb:
            self.tb.close()


def cuda_indices(device: torch.device, dist: Any) -> list[int]:
    """The CUDA devices whose system metrics this process records: its own, and under torchrun (the
    store rank) those of every rank on its node (cuda:LOCAL_RANK each); [] on CPU."""
    if device.type != "cuda":
        return []
    if dist is not None and getattr(dist, "active", False) and getattr(dist, "ranks", None):
        return sorted(r["local_rank"] for r in dist.ranks if r.get("node") == dist.node_rank)
    return [device.index if device.index is not None else torch.cuda.current_device()]
