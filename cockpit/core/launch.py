"""Starting a run: the one path from a validated spec to a worker process, for `cockpit run` and
the TUI's editor alike (the process layout is checked before anything is created)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from engine.atomic_write import describe
from engine.launch import spawn, split_endpoint
from engine.spec import RunSpec
from engine.store import Run, RunClaim, StoreError


class LaunchError(ValueError):
    """A process layout that cannot run this spec; the message says what to change."""


@dataclass(frozen=True)
class Layout:
    """How many processes train the run (torchrun's terms); the default is one process."""

    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str = ""
    sync_bn: bool = False

    @property
    def world(self) -> int:
        return self.nproc_per_node * self.nnodes


def check_layout(spec: RunSpec, layout: Layout) -> None:
    """LaunchError unless `layout` can train `spec` (the global batch splits evenly, and so on)."""
    world = layout.world
    if layout.nnodes > 1 and not layout.rdzv_endpoint:
        raise LaunchError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
    if layout.rdzv_endpoint:
        split_endpoint(layout.rdzv_endpoint)  # a ValueError that says what is wrong with it
    if spec.train.batch_size % world:
        raise LaunchError(f"train.batch_size={spec.train.batch_size} is the global batch and must divide by the "
                          f"{world} processes (--nproc-per-node x --nnodes); use a multiple of {world}")
    if layout.sync_bn and world == 1:
        raise LaunchError("--sync-bn needs several processes (--nproc-per-node or --nnodes > 1)")


def create_run(runs_dir: Path, spec: RunSpec, preset: str, layout: Layout = Layout()) -> Run:
    """Check the layout, then make the run's directory (StoreError if it cannot be made)."""
    check_layout(spec, layout)
    run = Run.create(runs_dir, spec, preset=preset)
    if layout.world > 1:
        run.set_meta(sync_bn=layout.sync_bn)
    return run


def start_worker(run: Run, layout: Layout | None = None, claim: RunClaim | None = None) -> subprocess.Popen:
    """Spawn the run's worker in its own session (under torchrun for several processes); None keeps
    the layout recorded in the run's meta (a resumed run). The run's claim (`claim`, or taken here)
    passes to the worker; ClaimHeld when another live process has the run, which is left as it is.
    StoreError (one line) when it cannot be started, with the run recorded as failed, or removed
    when it never held anything (a full disk)."""
    try:
        if layout is None:
            return spawn(run, claim=claim)
        return spawn(run, nproc_per_node=layout.nproc_per_node, nnodes=layout.nnodes,
                      rdzv_endpoint=layout.rdzv_endpoint, claim=claim)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(abandon(run, f"cannot start the worker of {run.run_id}: {describe(exc, run.path)}")) from None
    except ValueError as exc:  # a layout in meta that cannot start (several nodes, no endpoint)
        raise StoreError(abandon(run, f"cannot start the worker of {run.run_id}: {exc}")) from None


def abandon(run: Run, why: str) -> str:
    """A run whose worker could not start: recorded as failed; a new run that cannot even record
    that is removed, so nothing is left `created` for ever. Returns `why`."""
    try:
        run.set_meta(state="failed", ended=time.time(), error=why)
    except (OSError, sqlite3.Error, StoreError):
        fresh = not (run.checkpoints.exists() and any(run.checkpoints.iterdir()))
        run.close()
        if fresh:
            shutil.rmtree(run.path, ignore_errors=True)
    return why


def launch(runs_dir: Path, spec: RunSpec, preset: str, layout: Layout = Layout()) -> tuple[Run, subprocess.Popen]:
    """Create the run and start its worker: (run, worker process)."""
    run = create_run(runs_dir, spec, preset, layout)
    return run, start_worker(run, layout)
