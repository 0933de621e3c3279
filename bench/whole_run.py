"""`bench/engine_overhead.py --whole-run`: a fast94-shaped run through the engine against a bare loop
of the same math, both whole runs, in interleaved pairs.

Engine: the `fast94` preset (fastnet, whitening stem from the data, dirac init, lookahead, alternating
flip, label smoothing, an evaluation every epoch, checkpoints, the default instruments) at CPU size on
synthetic images, `Trainer.fit()` into a real run store (run.db, checkpoints/) in a temp dir; the time
split into its parts (bench/gpu_sides.py's wrappers). Bare: `engine.setup.build` of the same spec (the
same data, weights, whitening, optimizer groups and schedule), then the loop a person writes: prepare,
forward under the same autocast, the same loss, backward, step, schedule, lookahead, and the same test
evaluation after every epoch; nothing else. Pairs alternate their order (ABBA); the figure is the median
over pairs of bare time / engine time, printed last as `whole-run engine/bare: R` (goal >= 0.97).
Timed on CPU by the process's CPU time (all its threads: the checkpoint writer's too; other processes
of a shared machine left out; fsync's wait left out), with --wall-clock or on CUDA by wall clock.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench import gpu_sides
from bench.gpu_report import sync
from cockpit.core.presets import find_preset
from engine.loss import cross_entropy
from engine.runtime.device import autocast_for
from engine.setup import build
from engine.spec import RunSpec, load_spec
from engine.store import Run
from engine.train import Trainer
from engine.train.lookahead import Lookahead

# eager on both sides (compiling is the fast94 part's business); test images about 1/15 of an epoch's
# training images, fast94's proportion (10,000 against 50,000 x forward + backward)
BOTH = ["data.source=synthetic", "data.val_size=0", "train.compile=false", "evaluate.tta=false"]
CPU_SIZE = ["model.width=0.125"]


def whole_run_spec(device: str, batch: int, steps: int, epochs: int, threads: int, extra: list[str]) -> RunSpec:
    test = max(batch * steps // 5, 64)
    sets = [*BOTH, f"train.device={device}", f"train.batch_size={batch}", f"data.synthetic_train={batch * steps}",
            f"data.synthetic_test={test}", f"train.epochs={epochs}"]
    sets += CPU_SIZE + [f"train.threads={threads}"] if device == "cpu" else []
    return load_spec(find_preset("fast94"), sets + extra)


def engine_run(spec: RunSpec, tmp: Path) -> tuple[float, dict[str, float]]:
    run = Run.create(tmp, spec)
    tr = Trainer(spec, run, log=lambda _m: None)
    timer, clock = gpu_sides.instrument(tr)
    sync(tr.device)
    t0 = gpu_sides.CLOCK[0]()
    assert tr.fit() == "finished"
    sync(tr.device)
    total = gpu_sides.CLOCK[0]() - t0
    clock.finish()
    run.close()
    parts = {k: v for k, v in timer.s.items() if k != "TTA"}
    parts["other"] = max(total - sum(parts.values()), 0.0)
    return total, parts


def bare_run(spec: RunSpec) -> tuple[float, dict[str, float]]:
    p = build(spec)
    t, model, opt, sched = spec.train, p.model, p.optimizer, p.scheduler
    total_steps = t.epochs * p.steps_per_epoch
    la = Lookahead.build(model, spec, total_steps)
    evals, step = 0.0, 0
    clock = gpu_sides.CLOCK[0]
    sync(p.device)
    t0 = clock()
    for epoch in range(t.epochs):
        for xb, yb, _ in p.train_loader.epoch_batches(epoch):
            x = p.prepare(xb)
            with autocast_for(p.device, p.amp_dtype):
                loss = cross_entropy(model(x).float(), yb, t.label_smoothing, t.label_smoothing_form)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if la:
                la.step(step)
        te = clock()
        p.evaluate()  # the same evaluation, every epoch, as the engine's evaluate.every=1
        sync(p.device)
        evals += clock() - te
    sync(p.device)
    total = clock() - t0
    return total, {"steps": total - evals, "evaluations": evals}


def whole_run(args) -> int:
    if args.device == "cpu" and not args.wall_clock:
        gpu_sides.CLOCK[0] = time.process_time
    spec = whole_run_spec(args.device, args.batch, args.steps, args.epochs, args.threads, list(args.set))
    print(f"whole-run: fast94 at {'CPU size' if args.device == 'cpu' else 'full size'}: {spec.model.name}, batch "
          f"{spec.train.batch_size}, {args.steps} steps x {spec.train.epochs} epochs, an evaluation every epoch, "
          f"checkpoint_every {spec.train.checkpoint_every}, default instruments, a run store; {args.pairs} pairs (ABBA); timed by {'process CPU time' if gpu_sides.CLOCK[0] is time.process_time else 'wall clock'}")
    with tempfile.TemporaryDirectory(prefix="bench-whole-run-") as tmp:
        engine_run(spec, Path(tmp)), bare_run(spec)  # warm-up of each
        ratios, eng_parts, bare_parts = [], [], []
        for i in range(args.pairs):
            order = ("engine", "bare") if i % 2 == 0 else ("bare", "engine")
            times = {}
            for side in order:
                times[side], parts = engine_run(spec, Path(tmp)) if side == "engine" else bare_run(spec)
                (eng_parts if side == "engine" else bare_parts).append(parts)
            ratios.append(times["bare"] / times["engine"])
            print(f"pair {i}: engine {times['engine']:.3f} s, bare {times['bare']:.3f} s, bare/engine {ratios[-1]:.3f}",
                  flush=True)
    for name, runs in (("engine", eng_parts), ("bare", bare_parts)):
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"whole-run part {name}: " + ", ".join(f"{k} {v:.3f} s" for k, v in med.items()))
    r = statistics.median(ratios)
    print(f"whole-run engine/bare: {r:.3f} (median of {len(ratios)} pairs; goal >= 0.97: {'PASS' if r >= 0.97 else 'FAIL'})")
    return 0
