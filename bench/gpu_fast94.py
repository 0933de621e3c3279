"""bench/gpu.py's fast94 part: fast94 against airbench94 itself, in this process, on the same images.

fast94 runs as `cockpit run fast94` does: a run store (run.db, checkpoints) in a temporary runs dir,
`Trainer.fit()` with the preset's instruments, then the worker's TTA pass on best.pt. Per seed (fixed
epochs, so every seed does the same work): the final TTA accuracy, the time of fit() + TTA with the
compile time apart (step 1's excess over a steady step: torch.compile and the first-use cuDNN plans),
the build time apart (data to the device, whitening). airbench94: its own `train94` on its own
`CifarLoader` over the same uint8 images written in its format, then its `evaluate(tta_level=2)`;
its train time includes its whitening init, as in its own timing. The seeds alternate sides, so a
drifting machine slows both alike; the ratio is fast94's mean time over airbench's.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import torch

from bench.gpu_data import export_for_airbench
from bench.gpu_report import Budget, Report, guarded, mean_std, quiet, sync
from cockpit.core.presets import find_preset
from engine.passes import run_pass
from engine.spec import RunSpec, load_spec
from engine.store import Run
from engine.train import Trainer


def fast94_spec(cfg, seed: int) -> RunSpec:
    return load_spec(find_preset("fast94"), cfg.data_sets + cfg.fast94_sets + [f"train.seed={seed}"])


def one_fast94(spec: RunSpec, runs_dir: Path) -> dict[str, Any]:
    """One seed as a real run: store and checkpoints on, fit, then the TTA pass on best.pt."""
    run = Run.create(runs_dir, spec, preset="fast94")
    t0 = time.perf_counter()
    tr = Trainer(spec, run, log=quiet)
    build_s = time.perf_counter() - t0
    first: dict[str, float] = {}
    step = tr.train_step

    def timed_first(xb: torch.Tensor, yb: torch.Tensor) -> None:
        if tr.step:
            return step(xb, yb)
        sync(tr.device)
        ts = time.perf_counter()
        step(xb, yb)
        sync(tr.device)
        first["s"] = time.perf_counter() - ts

    tr.train_step = timed_first  # fit() calls self.train_step
    t1 = time.perf_counter()
    state = tr.fit()
    sync(tr.device)
    fit_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    tta = run_pass(run, "tta", live=tr.parts, live_step=tr.step, checkpoint="best", log=quiet)
    sync(tr.device)
    tta_s = time.perf_counter() - t2
    steady = (fit_s - first.get("s", 0.0)) / max(tr.step - 1, 1)
    compile_s = max(first.get("s", 0.0) - steady, 0.0)
    out = {"state": state, "acc": tta.tta_acc, "base_acc": tta.base_acc, "build_s": build_s, "fit_s": fit_s,
           "tta_s": tta_s, "compile_s": compile_s, "time_s": fit_s - compile_s + tta_s, "steps": tr.step,
           "data": tr.data}
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
        self.warm = False

    def read_back(self) -> str:
        return f"{len(self.train.images):,} train / {len(self.test.images):,} test images read back by airbench.CifarLoader"

    def run(self, seed: int) -> dict[str, Any]:
        with inside(self.home):
            if not self.warm:  # airbench's own warm-up: one step (compiles nothing, plans cuDNN)
                self.ab.warmup94(self.train, verbose=True)
                self.warm = True
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
        return {"acc": acc, "train_s": train_s, "tta_s": t2 - t1, "time_s": train_s + t2 - t1}


def seed_rows(report: Report, seed: int, f: dict[str, Any], a: dict[str, Any] | None) -> None:
    mem = f" peak {f['memory_gb']:.2f} GiB;" if "memory_gb" in f else ""
    report.row(f"fast94 seed {seed}", f"TTA {f['acc']:.2%} (no TTA {f['base_acc']:.2%}); fit {f['fit_s']:.2f} s incl. compile "
               f"{f['compile_s']:.2f} s, TTA {f['tta_s']:.2f} s, build {f['build_s']:.2f} s;{mem} {f['steps']} steps, {f['state']}",
               number=f["time_s"], unit="s")
    if a is not None:
        report.row(f"airbench94 seed {seed}", f"TTA {a['acc']:.2%}; train {a['train_s']:.2f} s (its test-set load "
                   f"inside train94 taken out), TTA {a['tta_s']:.2f} s",
                   number=a["time_s"], unit="s")


def summary_rows(report: Report, fast: list[dict], ab: list[dict], target: float) -> None:
    acc, acc_sd = mean_std([r["acc"] for r in fast])
    t, t_sd = mean_std([r["time_s"] for r in fast])
    comp, _ = mean_std([r["compile_s"] for r in fast])
    n = len(fast)
    report.row(f"fast94 final TTA accuracy ({n} seeds)", f"{acc:.2%} +- {acc_sd:.2%} (target {target:.0%}: "
               f"{'reached' if acc >= target else 'not reached'})", number=acc, unit="fraction")
    report.row(f"fast94 train + TTA time ({n} seeds, compile apart)", f"{t:.2f} +- {t_sd:.2f} s (compile + first-step "
               f"warm-up: {fast[0]['compile_s']:.1f} s on the first seed, {comp:.1f} s mean)", number=t, unit="s")
    if not ab:
        return
    a_acc, a_sd = mean_std([r["acc"] for r in ab])
    a_t, a_tsd = mean_std([r["time_s"] for r in ab])
    report.row(f"airbench94 final TTA accuracy ({len(ab)} seeds)", f"{a_acc:.2%} +- {a_sd:.2%}", number=a_acc, unit="fraction")
    report.row(f"airbench94 train + TTA time ({len(ab)} seeds)", f"{a_t:.2f} +- {a_tsd:.2f} s", number=a_t, unit="s")
    report.row("fast94 time / airbench94 time", f"{t / a_t:.2f}x (goal <= 1.25x with fast94's mean >= {target:.0%})",
               number=t / a_t, unit="x")


def airbench_or_why(report: Report, data, tmp: Path, device: torch.device) -> Airbench | None:
    try:
        ab = Airbench(data, tmp, device)
    except ImportError:
        report.row("airbench94 reference", "skipped (airbench not installed: pip install -e '.[bench]')")
        return None
    if device.type != "cuda":
        report.row("airbench94 reference", f"skipped (its train94 needs CUDA); {ab.read_back()}")
        return None
    report.row("airbench94 reference", f"airbench {getattr(ab.ab, '__version__', '0.1.8')}: train94 + evaluate(tta_level=2); "
               f"{ab.read_back()}")
    return ab


def part_fast94(report: Report, cfg, budget: Budget, tmp: Path) -> None:
    runs_dir, start = tmp / "runs", budget.elapsed()
    preset = find_preset("fast94")
    fast: list[dict] = []
    ab_runs: list[dict] = []
    ab: Airbench | None = None
    for i, seed in enumerate(range(cfg.seeds)):
        per_seed = (budget.elapsed() - start) / i if i else 0.0
        if i and budget.left() < per_seed * 1.1:
            report.row("fast94 seeds", f"stopped after {i} of {cfg.seeds} seeds (time budget: {budget.left():.0f} s left, "
                       f"{per_seed:.0f} s per seed)")
            break
        f = guarded(report, f"fast94 seed {seed}", lambda: one_fast94(fast94_spec(cfg, seed), runs_dir))
        if f is None:
            break
        if i == 0:
            report.row("fast94 spec", f"{preset} + {' '.join(cfg.data_sets + cfg.fast94_sets)}; data: {f['data'].name}")
            ab = airbench_or_why(report, f["data"], tmp, cfg.device)
        a = guarded(report, f"airbench94 seed {seed}", lambda: ab.run(seed)) if ab is not None else None
        if a is None:
            ab = None  # after a failure the ratio uses the seeds both sides finished
        f.pop("data")
        fast.append(f)
        if a is not None:
            ab_runs.append(a)
        seed_rows(report, seed, f, a)
    if fast:
        summary_rows(report, fast, ab_runs[:len(fast)], cfg.target)
