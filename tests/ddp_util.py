"""Helpers for the data-parallel tests: two gloo ranks on the CPU in spawned processes, trained
against one process without BatchNorm (the one per-rank effect), so the two must match exactly."""

from __future__ import annotations

import os
import socket
from typing import Callable

from torch import nn

from engine.spec import RunSpec
from engine.store import Run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world: int, port: int) -> None:
    """The environment torchrun gives rank `rank` of `world` on one node."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), GROUP_RANK="0")


def without_batchnorm() -> None:
    """Replace BatchNorm by identities in every model the trainer builds (the one per-rank effect)."""
    import engine.setup as S

    build = S.build_model

    def patched(spec, num_classes):
        model = build(spec, num_classes)
        for mod in list(model.modules()):
            for name, child in list(mod.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(mod, name, nn.Identity())
        return model

    S.build_model = patched


def two_ranks_against_one(tmp_path, spec: RunSpec, rank_main: Callable[[int, int, int, str], None],
                          monkeypatch) -> tuple[Run, Run]:
    """Run `rank_main(rank, 2, port, run_dir)` in two spawned processes on a run in tmp_path/multi
    while this process trains `spec` alone, without BatchNorm, in tmp_path/single; (single, multi)
    once both ranks exited cleanly."""
    import torch.multiprocessing as mp

    import engine.setup as S
    from engine.train import Trainer

    multi = Run.create(tmp_path / "multi", spec)
    port = free_port()
    procs = [mp.get_context("spawn").Process(target=rank_main, args=(r, 2, port, str(multi.path))) for r in range(2)]
    for p in procs:
        p.start()
    monkeypatch.setattr(S, "build_model", S.build_model)  # restored after the test
    without_batchnorm()
    single = Run.create(tmp_path / "single", spec)
    Trainer(spec, single, log=lambda _m: None).fit()
    for p in procs:
        p.join(240)
        assert p.exitcode == 0, f"rank exited with {p.exitcode}"
    return single, multi
