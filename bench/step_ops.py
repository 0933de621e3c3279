"""Benchmark: the share of each always-on per-step op in `Trainer.train_step` (instruments' sampled
cadences off), by taking one op out at a time.

    .venv/bin/python bench/step_ops.py [--preset fast94] [--batch 64] [--steps 20] [--repeats 15] [--set K=V ...]

Configurations, one Trainer each (same spec and seed): `full` (the step as shipped), and one op taken out:
`-grad norm + skip guard` (Instruments.after_backward returns a constant False: no norms, no accumulators,
no found_inf), `-BN snapshot` (Step.buffers = None: no save/restore of BN running statistics), `-window
sums` (Window.add does nothing), `-lookahead` (off: it is part of the recipe, shown for scale), and `bare`
(all of them out). Segments of S steps take turns in rotating order for R rounds; each op's share is
(full - without) / full of the median segment time, and the ATen ops one plain step dispatches (counted
by a TorchDispatchMode: noise-free, and what a GPU pays a kernel launch for at least). On CPU with one torch thread it times by the
training thread's CPU time (bench/common.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from bench.common import CLOCK, MONITOR_OFF, setup  # noqa: E402
from cockpit.core.presets import find_preset  # noqa: E402
from engine.spec import load_spec  # noqa: E402
from engine.train import Trainer  # noqa: E402

OPS = ("-grad norm + skip guard", "-BN snapshot", "-window sums", "-lookahead")


def make(args, name: str) -> Trainer:
    sets = ["data.source=synthetic", f"data.synthetic_train={args.batch * 8}", "data.synthetic_test=64", "data.val_size=0",
            f"train.batch_size={args.batch}", f"train.device={args.device}", "train.compile=false", *MONITOR_OFF]
    if args.device == "cpu":
        sets += ["model.width=0.125", f"train.threads={args.threads}"]
    if name in ("-lookahead", "bare"):
        sets.append("train.lookahead_every=0")
    tr = Trainer(load_spec(find_preset(args.preset) if args.preset else None, sets + list(args.set)), None, log=lambda _m: None)
    if name in ("-grad norm + skip guard", "bare"):
        never = torch.zeros((), dtype=torch.bool, device=tr.device)
        tr.instruments.after_backward = lambda step, *a: never
    if name in ("-BN snapshot", "bare"):
        tr.stepper.buffers = None
    if name in ("-window sums", "bare"):
        tr.window.add = lambda out, y: None
    return tr


class OpCount(TorchDispatchMode):
    """ATen ops dispatched that compute (views and detach left out): a GPU launches at least one kernel
    for each (a foreach op counts once here, a launch per chunk of tensors there)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and func.overloadpacket.__name__ not in ("detach", "alias", "lift_fresh"):
            self.n += 1
        return func(*args, **(kwargs or {}))


def ops_per_step(tr: Trainer, stream) -> int:
    """ATen ops of one plain (not sampled) step."""
    xb, yb = next(stream)
    with OpCount() as c:
        tr.train_step(xb, yb)
    return c.n


def segment(tr: Trainer, stream, steps: int) -> float:
    batches = [next(stream) for _ in range(steps)]
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = CLOCK[0]()
    for xb, yb in batches:
        tr.train_step(xb, yb)
    if tr.device.type == "cuda":
        torch.cuda.synchronize()
    return CLOCK[0]() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast94")
    ap.add_argument("--model", default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--wall-clock", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    setup(args)
    names = ["full", *OPS, "bare"]
    trainers = {n: make(args, n) for n in names}
    streams = {n: tr.train_loader.forever() for n, tr in trainers.items()}
    for n in names:  # warm-up
        segment(trainers[n], streams[n], 2)
    ops = {n: ops_per_step(trainers[n], streams[n]) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(segment(trainers[n], streams[n], args.steps))
    med = {n: statistics.median(ts) / args.steps for n, ts in times.items()}
    tr = trainers["full"]
    print(f"bench/step_ops.py: {tr.spec.model.name} ({args.preset} preset), batch {args.batch}, {args.device}, "
          f"amp {tr.amp_dtype or 'off'}; {args.repeats} rounds x {args.steps} steps; timed by {CLOCK[1]}")
    print(f"{'configuration':<26} {'ms/step':>9} {'share of full':>14} {'ATen ops/step':>14} {'ops taken out':>14}")
    for n in names:
        share = (med["full"] - med[n]) / med["full"]
        print(f"{n:<26} {1000 * med[n]:9.3f} {'' if n == 'full' else f'{share:14.1%}':>14} {ops[n]:14d} "
              f"{'' if n == 'full' else ops['full'] - ops[n]:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
