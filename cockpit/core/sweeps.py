"""What the sweep commands and views share, with no Optuna and no UI: the launcher that starts a
trial's worker through the one launch path, and how `--parallel N` splits this machine (one GPU per
trial where there are GPUs, the CPU threads shared out otherwise)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.launch import spawn
from engine.spec import RunSpec
from engine.store import Run, RunClaim, StoreError, resolve_run
from engine.sweep.runner import Slot

from .launch import create_run


@dataclass(frozen=True)
class TrialLauncher:
    """Trials are ordinary runs in `runs_dir`: created by `create_run`, started by `engine.launch`."""
    runs_dir: Path

    def create(self, spec: RunSpec, preset: str) -> Run:
        return create_run(self.runs_dir, spec, preset)

    def spawn(self, run: Run, env: dict[str, str], claim: RunClaim | None = None) -> subprocess.Popen:
        return spawn(run, extra_env=env, claim=claim)

    def find(self, run_id: str) -> Run | None:
        try:
            return resolve_run(run_id, self.runs_dir)
        except StoreError:
            return None


def visible_gpus() -> list[str]:
    """The GPUs a trial may be pinned to: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def plan_slots(parallel: int, gpus: list[str] | None = None, cpus: int | None = None) -> list[Slot]:
    """`parallel` slots: one GPU each (round robin when there are fewer GPUs than slots), or on a
    CPU-only machine the cores split evenly (train.threads) so trials do not fight over them."""
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        return [Slot(env={"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]}) for i in range(parallel)]
    if parallel == 1:
        return [Slot()]
    threads = max(1, (cpus or os.cpu_count() or 1) // parallel)
    return [Slot(overrides=(f"train.threads={threads}",)) for _ in range(parallel)]
