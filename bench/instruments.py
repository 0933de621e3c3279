"""Benchmark: what the instruments cost, and how big they make run.db.

    .venv/bin/python bench/instruments.py [--model M] [--batch B] [--steps S] [--device D] [--repeats R]
                                          [--threads T] [--preset P] [--set KEY=VALUE ...] [--no-store] [--wall-clock]
                                          [--interleave step|segment] [--no-table] [--no-storage] [--storage-preset P]
                                          [--storage-steps N] [--storage-epochs E]

One process, one Trainer per configuration (same spec, model, seed and data; only `[monitor]` differs).
Each timed segment is S optimizer steps through `Trainer.train_step`, with the read (`flush_window`) every
`monitor.every` steps and once at the segment's end, as `Trainer.fit` does at an epoch's end. The
configurations take turns, for R rounds, so that drift in the load of a shared machine hits them all alike:
on CPU step by step (a round is S steps of every configuration, the order rotating each step; CPU work is
synchronous, so timing single steps changes nothing), on CUDA segment by segment (in pairs of rounds: a
rotated order, then it reversed; a segment ends with a synchronize, so the device's queue is timed whole).
S is a multiple of every cadence, so each round holds the same number of sampled steps. Ratios to `none`
are the median over rounds of the round's ratio (and, in brackets, fastest round vs fastest round); an
instrument's cost is the median over rounds of the paired difference to `none`. The clock: wall time with a CUDA sync on GPU; on CPU with one torch thread (the
default there), the training thread's CPU time (`time.thread_time`), which leaves out the time other
processes of a shared machine take (--wall-clock for wall time).

Configurations:

    none           monitor.every=10^6, grad_flow_every=0, activations_every=0, difficulty_every=0
                   (the always-on part stays: global grad norm, non-finite guard, loss/accuracy sums)
    default        the spec's cadences (RunSpec defaults: every=10, grad flow 10, activations 100, difficulty 50)
    all@1          every instrument and the read at every step
    grad_flow@1    per-group grad norms and update/weight ratios only, every step
    activations@1  activation hooks only, every step
    difficulty@1   per-sample loss quantiles and histogram only, every step
    read@1         the read only (one host transfer + one run.db transaction), every step

The headline is `default` vs `none` (target >= 0.97). The table gives each instrument's cost per sampled
step (from its @1 configuration) and amortized at its default cadence (cost / cadence), like the Cockpit
paper's overhead table. With a run store (the default; --no-store drops it) every read also writes its
rows to run.db in one transaction, as a real run does.

Storage: a short real run (`Trainer.fit()` with a `Run` in a temp dir) of the --storage-preset's model
(default sgd_cosine: ResNet-18) at the preset's cadences, narrowed (model.width, small synthetic images) so
it takes seconds on a CPU: same module names, so the same rows per step. Bytes per row come from SQLite's
dbstat (table + index pages of `metrics`), rows per step from the run; the projection scales both to the
preset's full run (200 epochs of CIFAR-10 for sgd_cosine).

System sampler (bench/system.py): the time of one sample of engine/system.py (psutil, NVML on a GPU)
and the ratio of training time with it to without it at its cadence (one sample per 2 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import CLOCK, NEVER, setup  # noqa: E402
from bench.storage import storage  # noqa: E402
from bench.system import system_cost  # noqa: E402

from engine.spec import RunSpec, load_spec  # noqa: E402
from engine.store import Run  # noqa: E402
from engine.train import Trainer  # noqa: E402

OFF = {"monitor.every": NEVER, "monitor.grad_flow_every": 0, "monitor.activations_every": 0,
       "monitor.difficulty_every": 0}


def configs(default: RunSpec) -> dict[str, dict[str, int]]:
    """name -> monitor overrides."""
    m = default.monitor
    return {
        "none": dict(OFF),
        "default": {"monitor.every": m.every, "monitor.grad_flow_every": m.grad_flow_every,
                    "monitor.activations_every": m.activations_every, "monitor.difficulty_every": m.difficulty_every},
        "all@1": {"monitor.every": 1, "monitor.grad_flow_every": 1, "monitor.activations_every": 1,
                  "monitor.difficulty_every": 1},
        "grad_flow@1": dict(OFF, **{"monitor.grad_flow_every": 1}),
        "activations@1": dict(OFF, **{"monitor.activations_every": 1}),
        "difficulty@1": dict(OFF, **{"monitor.difficulty_every": 1}),
        "read@1": dict(OFF, **{"monitor.every": 1}),
    }


# instrument -> (its @1 configuration, the monitor field that sets its default cadence)
INSTRUMENTS = {
    "grad flow (per-group norms, update ratios)": ("grad_flow@1", "grad_flow_every"),
    "activations (hooks: mean/std/zeros/dead/sat.)": ("activations@1", "activations_every"),
    "sample difficulty (loss quantiles, histogram)": ("difficulty@1", "difficulty_every"),
    "read (one transfer + one run.db transaction)": ("read@1", "every"),
}


# the timer: wall time (perf_counter) on CUDA; on CPU with one torch thread, this thread's CPU time, which
# leaves out the time other processes of a shared machine take from it (--wall-clock forces wall time)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)



class Side:
    """One configuration: its Trainer, its batch stream and its timings."""

    def __init__(self, name: str, spec: RunSpec, runs_dir: Path | None):
        self.name, self.spec = name, spec
        self.store = Run.create(runs_dir, spec) if runs_dir is not None else None
        self.trainer = Trainer(spec, self.store, log=lambda _m: None)
        self.stream = self.trainer.train_loader.forever()
        self.times: list[float] = []  # by CLOCK
        self.walls: list[float] = []  # wall time of the same segments (includes fsync waits and other processes)
        self.steps = 0

    def segment(self, n: int) -> tuple[float, float]:
        """(CLOCK seconds, wall seconds) for n steps and the end-of-segment read."""
        w0, t0 = time.perf_counter(), CLOCK[0]()
        for _ in range(n):
            self.step()
        self.end()
        sync(self.trainer.device)
        return CLOCK[0]() - t0, time.perf_counter() - w0

    def step(self) -> None:
        """One step as Trainer.fit does it: train_step, and the read every monitor.every steps."""
        tr = self.trainer
        xb, yb = next(self.stream)
        tr.train_step(xb, yb)
        if tr.step % self.spec.monitor.every == 0:
            tr.flush_window()

    def end(self) -> None:
        self.trainer.flush_window()  # the end-of-epoch read (a no-op right after a cadence read)

    def timed(self, fn) -> tuple[float, float]:
        w0, t0 = time.perf_counter(), CLOCK[0]()
        fn()
        return CLOCK[0]() - t0, time.perf_counter() - w0

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def lcm_of_cadences(spec: RunSpec) -> int:
    import math

    m = spec.monitor
    out = 1
    for c in (m.every, m.grad_flow_every, m.activations_every, m.difficulty_every):
        if c:
            out = math.lcm(out, c)
    return out


def base_spec(args) -> RunSpec:
    device = args.device
    sets = [
        f"model.name={args.model}", f"train.batch_size={args.batch}", f"train.device={device}",
        "train.epochs=1000",  # the schedule never reaches its end (LR 0) inside the benchmark
        "data.source=synthetic", f"data.synthetic_train={args.batch * 16}", "data.synthetic_test=64",
        "data.val_size=0",
    ]
    if args.threads:
        sets.append(f"train.threads={args.threads}")
    return load_spec(args.preset, sets + list(args.set))


def measure(args) -> dict:
    spec0 = base_spec(args)
    cfgs = configs(spec0)
    if args.no_table:
        cfgs = {k: v for k, v in cfgs.items() if k in ("none", "default")}
    lcm = lcm_of_cadences(spec0)
    steps = args.steps
    if steps % lcm:
        print(f"note: --steps {steps} is not a multiple of the default cadences' lcm {lcm}; "
              f"segments then differ in their number of sampled steps (noisier 'default')")
    tmp = tempfile.TemporaryDirectory(prefix="bench-instruments-")
    runs_dir = None if args.no_store else Path(tmp.name)
    sides = {}
    for name, sets in cfgs.items():
        spec = spec0.model_copy(deep=True)
        for key, value in sets.items():
            setattr(spec.monitor, key.split(".")[1], value)
        sides[name] = Side(name, spec, runs_dir)
    dev = sides["none"].trainer.device
    for s in sides.values():  # warm-up: allocator, first hook/kernel calls, one read
        s.segment(args.warmup)
    order = list(sides)
    interleave = args.interleave or ("segment" if dev.type == "cuda" else "step")
    for r in range(args.repeats):
        if interleave == "segment":  # rounds in pairs: a rotation of the order, then the same reversed
            k = (r // 2) % len(order)
            rnd = order[k:] + order[:k]
            if r % 2:
                rnd.reverse()
            for name in rnd:
                t, w = sides[name].segment(steps)
                sides[name].times.append(t)
                sides[name].walls.append(w)
        else:  # step by step (CPU work is synchronous, so timing one step changes nothing)
            acc = {name: [0.0, 0.0] for name in order}
            for i in range(steps + 1):
                k = i % len(order)
                rnd = order[k:] + order[:k]
                if (i // len(order)) % 2:
                    rnd.reverse()
                for name in rnd:
                    side = sides[name]
                    t, w = side.timed(side.step if i < steps else side.end)
                    acc[name][0] += t
                    acc[name][1] += w
            for name, (t, w) in acc.items():
                sides[name].times.append(t)
                sides[name].walls.append(w)
        for side in sides.values():
            side.steps += steps
    out = {"spec": spec0, "device": dev, "steps": steps, "sides": sides, "tmp": tmp, "interleave": interleave}
    return out


def report(res: dict, args) -> dict:
    sides = res["sides"]
    spec: RunSpec = res["spec"]
    batch, steps = spec.train.batch_size, res["steps"]
    none = sides["none"]

    def ips(s: Side) -> float:  # mean over every timed step
        return s.steps * batch / sum(s.times)

    def ms(s: Side) -> float:  # median segment
        return 1000 * statistics.median(s.times) / steps

    def ratio(s: Side) -> float:  # median over rounds of the round's none/config time ratio
        return statistics.median(a / b for a, b in zip(none.times, s.times))

    def wall_ratio(s: Side) -> float:
        return statistics.median(a / b for a, b in zip(none.walls, s.walls))

    def best_ratio(s: Side) -> float:  # best segment vs best segment (interference only ever adds time)
        return min(none.times) / min(s.times)

    base_ms = ms(none)
    print(f"\nimages/s through Trainer.train_step (+ the read every monitor.every steps); "
          f"{spec.model.name}, batch {batch}, {res['device']}, {args.repeats} rounds x {steps} steps, "
          f"run store {'off' if args.no_store else 'on'}; interleaved by {res['interleave']}; timed by {CLOCK[1]}")
    two = CLOCK[0] is not time.perf_counter
    print(f"{'configuration':<16} {'images/s':>10} {'ms/step':>9} {'vs none':>9} {'(best)':>8} {'overhead':>9}"
          + (f" {'wall: vs none':>14}" if two else ""))
    figures = {}
    for name, s in sides.items():
        r = ratio(s)
        figures[name] = {"images_per_s": ips(s), "ms_per_step": ms(s), "ratio_vs_none": r,
                         "best_ratio_vs_none": best_ratio(s), "wall_ratio_vs_none": wall_ratio(s)}
        print(f"{name:<16} {ips(s):10,.0f} {ms(s):9.2f} {r:9.3f} {best_ratio(s):8.3f} {100 * (1 / r - 1):+8.1f}%"
              + (f" {wall_ratio(s):14.3f}" if two else ""))
    print("(images/s: all timed steps; ms/step: median segment; vs none: median over rounds of the round's ratio; "
          "best: fastest segment vs fastest segment" + ("; wall: the same by wall clock, which also holds fsync "
          "waits and other processes' load" if two else "") + ")")
    r, rb, rw = (figures["default"][k] for k in ("ratio_vs_none", "best_ratio_vs_none", "wall_ratio_vs_none"))
    verdict = "PASS" if r >= 0.97 else "FAIL"
    print(f"\nheadline: default instruments / none = {r:.3f} (best segments {rb:.3f}"
          + (f"; wall clock {rw:.3f}" if two else "") + f"); target >= 0.97, aim 0.99: {verdict}")

    if "all@1" in sides:
        instrument_table(sides, spec.monitor, base_ms, steps, figures)
    return figures


def instrument_table(sides: dict, m, base_ms: float, steps: int, figures: dict) -> None:
    """Each instrument's cost per sampled step and amortized over its default cadence (the Cockpit
    paper's table), their sum next to the measured default."""
    none = sides["none"]

    def extra_ms(s: Side) -> float:  # median over rounds of the paired per-step difference to none
        return 1000 * statistics.median(b - a for a, b in zip(none.times, s.times)) / steps

    print(f"\nper-instrument overhead (extra time of one sampled step over a `none` step of {base_ms:.2f} ms, "
          f"median of the rounds' paired differences; amortized = per sampled step / default cadence)")
    print(f"{'instrument':<46} {'ms/sampled step':>15} {'% per step':>10} {'cadence':>8} {'% amortized':>11}")
    total = 0.0
    for label, (cfg, field) in INSTRUMENTS.items():
        extra = extra_ms(sides[cfg])
        cadence = getattr(m, field)
        amort = 100 * extra / base_ms / cadence if cadence else 0.0
        total += amort
        figures[cfg]["extra_ms"] = extra
        print(f"{label:<46} {extra:15.3f} {100 * extra / base_ms:9.1f}% {cadence:8d} {amort:10.2f}%")
    all_extra = extra_ms(sides["all@1"])
    print(f"{'all at every step (measured)':<46} {all_extra:15.3f} {100 * all_extra / base_ms:9.1f}% {1:8d} "
          f"{100 * all_extra / base_ms:10.2f}%")
    print(f"{'sum of the amortized rows (predicted default)':<46} {'':15} {'':10} {'':8} {total:10.2f}%")
    d_extra = extra_ms(sides["default"])
    print(f"{'default cadences (measured)':<46} {d_extra:15.3f} {'':10} {'':8} {100 * d_extra / base_ms:10.2f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name (default: tiny on CPU, resnet18 on CUDA)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: 64 on CPU, 128 on CUDA)")
    ap.add_argument("--steps", type=int, default=100, help="steps per timed segment (default 100: the lcm of the default cadences)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps per configuration first")
    ap.add_argument("--repeats", type=int, default=5, help="rounds: each configuration runs one segment per round")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU, torch's on CUDA)")
    ap.add_argument("--preset", default=None, help="base spec (default: RunSpec defaults); data becomes synthetic")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra spec override")
    ap.add_argument("--interleave", choices=["step", "segment"], default=None,
                    help="turns between configurations: every step (CPU default) or every segment (CUDA default)")
    ap.add_argument("--wall-clock", action="store_true", help="time by wall clock on CPU too (default there: thread CPU time)")
    ap.add_argument("--no-store", action="store_true", help="no run store: reads go nowhere (instruments alone)")
    ap.add_argument("--no-table", action="store_true", help="only none vs default (no per-instrument table)")
    ap.add_argument("--no-storage", action="store_true", help="skip the run.db size projection")
    ap.add_argument("--storage-preset", default="sgd_cosine", help="preset whose full run the projection is for")
    ap.add_argument("--storage-steps", type=int, default=100,
                    help="steps per epoch of the short storage run (>= the largest cadence, else rows/step come out low)")
    ap.add_argument("--storage-epochs", type=int, default=3, help="epochs of the short storage run")
    args = ap.parse_args(argv)

    dev = setup(args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"bench/instruments.py: torch {torch.__version__}; {name}; torch threads {torch.get_num_threads()}; "
          f"load average {load:.1f}; timed by {CLOCK[1]}")
    res = measure(args)
    try:
        report(res, args)
    finally:
        for s in res["sides"].values():
            s.close()
        res["tmp"].cleanup()
    system_cost(dev)
    if not args.no_storage:
        storage(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
