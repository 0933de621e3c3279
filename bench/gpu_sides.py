"""bench/gpu_fast94.py's sides: fast94 through the worker's own code path with the time split into its
parts, airbench94 through its own package, and dynamo's compile counters around each seed.

fast94 runs as `cockpit run fast94`'s worker runs it: a run store (run.db, checkpoints) in a temporary
runs dir, `Trainer(spec, run)`, then `engine.worker._train` (fit, then the passes the spec asks for: the
TTA pass on best.pt). The parts are timed by wrapping the trainer's own methods: steps by a pair of CUDA
events each (no sync added; on CPU by the clock), every other part by the clock after a synchronize
(each of them syncs anyway: evaluation reads its figures, a window read is one transfer, a checkpoint
copies to the host).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from bench.gpu_data import export_for_airbench
from bench.gpu_report import quiet, sync
from engine import passes
from engine.spec import RunSpec
from engine.store import Run
from engine.train import Trainer

CLOCK = [time.perf_counter]  # bench/whole_run.py times CPU runs by the process's CPU time instead

PARTS = ("steps", "evaluations", "window reads + store writes", "checkpoints (training thread)",
         "checkpoint writer wait", "TTA")


def dynamo_counts() -> dict[str, int]:
    """Graphs dynamo has compiled, frames it has converted and graph breaks it took, in this process so far
    (a recompile converts a frame again and compiles a new graph)."""
    from torch._dynamo.utils import counters

    return {"graphs": int(counters["stats"]["unique_graphs"]), "frames": int(counters["frames"]["total"]),
            "graph_breaks": int(sum(counters["graph_break"].values()))}


class Timer:
    """Seconds per part, each part timed by the clock between two synchronizes."""

    def __init__(self, device: torch.device):
        self.device, self.s = device, dict.fromkeys(PARTS, 0.0)

    def wrap(self, owner: Any, name: str, part: str) -> None:
        fn = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            t0 = CLOCK[0]()
            try:
                return fn(*args, **kwargs)
            finally:
                sync(self.device)
                self.s[part] += CLOCK[0]() - t0

        setattr(owner, name, timed)


class StepClock:
    """The GPU time of every `train_step` by a pair of CUDA events (read once, at the end); the clock on CPU."""

    def __init__(self, tr: Trainer, timer: Timer):
        self.cuda, self.pairs, self.timer = tr.device.type == "cuda", [], timer
        step = tr.train_step

        def timed(xb: torch.Tensor, yb: torch.Tensor) -> None:
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                step(xb, yb)
                b.record()
                self.pairs.append((a, b))
            else:
                t0 = CLOCK[0]()
                step(xb, yb)
                timer.s["steps"] += CLOCK[0]() - t0

        tr.train_step = timed  # fit() calls self.train_step

    def finish(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.timer.s["steps"] = sum(a.elapsed_time(b) for a, b in self.pairs) / 1000


def instrument(tr: Any) -> tuple[Timer, StepClock]:
    """A trainer timed by part, the same parts in the GPU bench and the whole-run bench: steps,
    evaluations, window reads and store writes, checkpoints, the writer's wait."""
    timer = Timer(tr.device)
    clock = StepClock(tr, timer)
    timer.wrap(tr, "evaluate_epoch", "evaluations")
    timer.wrap(tr, "flush_window", "window reads + store writes")
    timer.wrap(tr, "save", "checkpoints (training thread)")
    timer.wrap(tr.writer, "close", "checkpoint writer wait")
    return timer, clock


@contextlib.contextmanager
def timed_passes(timer: Timer):
    """The worker imports run_pass from engine.passes when it runs one: time it there."""
    real = passes.run_pass
    passes.run_pass = lambda *a, **k: _timed(timer, real, *a, **k)
    try:
        yield
    finally:
        passes.run_pass = real


def _timed(timer: Timer, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    sync(timer.device)
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        sync(timer.device)
        timer.s["TTA"] += time.perf_counter() - t0


def run_fast94(spec: RunSpec, runs_dir: Path) -> dict[str, Any]:
    """One seed as the worker runs it; its time (fit + passes), the parts, start-up apart, the TTA accuracy."""
    from engine.worker import _train

    device = torch.device("cuda" if spec.train.device != "cpu" and torch.cuda.is_available() else "cpu")
    sync(device)
    t0 = time.perf_counter()
    run = Run.create(runs_dir, spec, preset="fast94")
    tr = Trainer(spec, run, log=quiet)
    sync(device)
    startup = time.perf_counter() - t0
    timer, clock = instrument(tr)
    t1 = time.perf_counter()
    with timed_passes(timer):
        state = _train(tr)
    sync(tr.device)
    total = time.perf_counter() - t1
    clock.finish()
    [tta] = run.results("tta")[-1:] or [None]
    acc = tta.data.tta_acc if tta is not None else float("nan")
    base = tta.data.base_acc if tta is not None else float("nan")
    out = {"state": state, "acc": acc, "base_acc": base, "time_s": total, "startup_s": startup, "steps": tr.step,
           "parts": dict(timer.s), "data": tr.data}
    out["parts"]["other (host, untimed)"] = max(total - sum(timer.s.values()), 0.0)
    if tr.device.type == "cuda":
        out["memory_gb"] = torch.cuda.max_memory_allocated(tr.device) / 2**30
    run.close()
    return out


@contextlib.contextmanager
def inside(path: Path):
    """airbench's train94 opens its test set at ./cifar10: run it from the folder that holds it."""
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)


class Airbench:
    """airbench94 through its own package: train94 on its CifarLoader, evaluate with tta_level=2."""

    def __init__(self, data, tmp: Path, device: torch.device):
        import airbench

        self.ab, self.home, self.device = airbench, tmp / "airbench", device
        export_for_airbench(data.train_x, data.train_y, data.test_x, data.test_y, data.classes, self.home / "cifar10")
        gpu = 0 if device.type == "cuda" else "cpu"
        with inside(self.home):
            self.train = airbench.CifarLoader("cifar10", train=True, batch_size=1024, aug={"flip": True, "translate": 2},
                                              altflip=True, gpu=gpu)
            sync(device)
            t0 = time.perf_counter()
            self.test = airbench.CifarLoader("cifar10", train=False, batch_size=2000, gpu=gpu)
            sync(device)
        # train94 loads its test set like this before its own timer starts: taken out of its train time
        self.test_load_s = time.perf_counter() - t0

    def read_back(self) -> str:
        return f"{len(self.train.images):,} train / {len(self.test.images):,} test images read back by airbench.CifarLoader"

    def warm_up(self) -> None:
        """airbench's own warm-up (one step), then one full train + evaluate, discarded."""
        with inside(self.home):
            self.ab.warmup94(self.train, verbose=True)
        self.run(-1)

    def run(self, seed: int) -> dict[str, Any]:
        with inside(self.home):
            torch.manual_seed(seed)
            sync(self.device)
            t0 = time.perf_counter()
            model = self.ab.train94(self.train, verbose=False)
            sync(self.device)
            t1 = time.perf_counter()
            acc = self.ab.evaluate(model, self.test, tta_level=2)
            sync(self.device)
        t2 = time.perf_counter()
        train_s = max(t1 - t0 - self.test_load_s, 0.0)
        return {"acc": acc, "time_s": train_s + t2 - t1, "parts": {"train (its test-set load taken out)": train_s,
                                                                  "TTA": t2 - t1}}
