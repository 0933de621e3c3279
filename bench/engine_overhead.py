"""Benchmark: an epoch through the engine vs a bare PyTorch loop, same everything else.

    .venv/bin/python bench/engine_overhead.py [--model M] [--batch B] [--steps S] [--device D] [--repeats R]
                                              [--augment default|fast|guide] [--threads T] [--wall-clock] [--set KEY=VALUE ...]
    .venv/bin/python bench/engine_overhead.py --whole-run [--pairs 5] [--epochs 10] [--batch B] [--steps S]

--whole-run: a fast94-shaped whole run (fit(), evaluations, checkpoints, instruments, the store) against a
bare loop of the same math with the same evaluations (bench/whole_run.py); its last line is
`whole-run engine/bare: R`.

Both sides, in this process, on the same data (the Trainer's device-resident uint8 tensors), the same
model architecture and initial weights (built with the same seed), the same augmentation
(`engine.augment.Augmenter` of the spec), the same AMP, channels_last, loss (cross-entropy with the spec's
label smoothing) and optimizer/schedule (SGD with the engine's decay/no-decay param groups, fused, and a
per-iteration cosine LambdaLR):

* engine: `Trainer.train_step` for every batch of `Trainer.train_loader.epoch_batches(epoch)`, instruments
  off (monitor.every=10^6, grad_flow/activations/difficulty 0), then `flush_window()` at the epoch's end
  (what `Trainer.fit` does). What remains is the engine's always-on work: global grad norm and non-finite
  guard, loss/accuracy sums on the device, data-time bookkeeping.
* bare: the loop a person writes by hand: a device randperm per epoch, index, augment, forward, backward,
  step, schedule step; a synchronize at the epoch's end.

Epochs of S steps alternate engine/bare in ABBA order for R rounds; the figure is images/s per side
(total images / total time), and the ratio engine/bare is the median of the rounds' ratios (target >= 0.95).
The clock: wall time with a CUDA sync on GPU; on CPU with one torch thread (the default there), the training
thread's CPU time, which leaves out the time other processes of a shared machine take (--wall-clock: wall).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import CLOCK, MONITOR_OFF, setup  # noqa: E402

from engine.augment import Augmenter, guide_spec  # noqa: E402
from engine.runtime.device import autocast_for  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.spec import RunSpec, SGDSpec, load_spec  # noqa: E402
from engine.train import Trainer  # noqa: E402

AUGMENTS = {
    "default": [],  # the spec's default: flip + normalize
    "fast": ["augment.translate=2"],  # the speed presets': flip + 2-px translate + normalize
    "guide": None,  # the guide's full pipeline (engine.augment.guide_spec)
}


# wall time on CUDA; on CPU with one torch thread, the training thread's CPU time (leaves out what other
# processes of a shared machine take); --wall-clock forces wall time


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_spec(args) -> RunSpec:
    sets = [
        f"model.name={args.model}", f"train.batch_size={args.batch}", f"train.device={args.device}",
        "train.epochs=1000", "data.source=synthetic", f"data.synthetic_train={args.batch * args.steps}",
        "data.synthetic_test=64", "data.val_size=0",
        *MONITOR_OFF,
    ]
    if args.threads:
        sets.append(f"train.threads={args.threads}")
    sets += AUGMENTS[args.augment] or []
    spec = load_spec(None, sets + list(args.set))
    if args.augment == "guide":
        spec.augment = guide_spec()
    if not isinstance(spec.optim, SGDSpec) or spec.optim.layer_lr:
        raise SystemExit("the bare loop is written for SGD without layer_lr; drop those overrides")
    return spec


class Engine:
    def __init__(self, spec: RunSpec):
        self.trainer = Trainer(spec, None, log=lambda _m: None)
        self.epoch = 0
        self.images = 0

    def run_epoch(self) -> float:
        tr = self.trainer
        t0 = CLOCK[0]()
        for xb, yb, _ in tr.train_loader.epoch_batches(self.epoch):
            tr.train_step(xb, yb)
        tr.flush_window()
        sync(tr.device)
        self.epoch += 1
        self.images += len(tr.train_loader) * tr.spec.train.batch_size
        return CLOCK[0]() - t0


class Bare:
    """The hand-written loop, on the engine's data tensors."""

    def __init__(self, spec: RunSpec, trainer: Trainer):
        t, o = spec.train, spec.optim
        self.device = trainer.device
        self.amp_dtype = trainer.amp_dtype  # same resolution of train.amp as the engine (bf16/fp16/off)
        self.channels_last = trainer.channels_last
        self.label_smoothing = t.label_smoothing
        self.x, self.y = trainer.train_loader.x, trainer.train_loader.y  # the same device-resident uint8 data
        self.batch = t.batch_size
        self.nb = self.x.shape[0] // self.batch
        torch.manual_seed(t.seed)  # the same initial weights as the engine's model
        self.model = build_model(spec.model, trainer.data.num_classes).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        decay = [p for p in self.model.parameters() if p.ndim > 1]
        no_decay = [p for p in self.model.parameters() if p.ndim <= 1]
        self.opt = torch.optim.SGD([{"params": decay, "weight_decay": o.weight_decay},
                                    {"params": no_decay, "weight_decay": 0.0}],
                                   lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, fused=True)
        total = t.epochs * self.nb
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / total, 1))))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.augment = Augmenter(spec.augment, trainer.data.mean, trainer.data.std)
        self.images = 0

    def run_epoch(self) -> float:
        model, opt, sched, scaler = self.model, self.opt, self.sched, self.scaler
        t0 = CLOCK[0]()
        perm = torch.randperm(self.x.shape[0], device=self.device)
        for b in range(self.nb):
            idx = perm[b * self.batch : (b + 1) * self.batch]
            x = self.augment.train(self.x[idx])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_for(self.device, self.amp_dtype):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), self.y[idx], label_smoothing=self.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
        sync(self.device)
        self.images += self.nb * self.batch
        return CLOCK[0]() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model name (default: tiny on CPU, resnet18 on CUDA)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: 64 on CPU, 128 on CUDA)")
    ap.add_argument("--steps", type=int, default=10,
                    help="steps per epoch (the synthetic set is batch x steps images); short epochs, many rounds: "
                         "finer alternation cancels more of a shared machine's drift")
    ap.add_argument("--repeats", type=int, default=40, help="rounds of one engine epoch and one bare epoch (ABBA order)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--augment", choices=list(AUGMENTS), default="fast",
                    help="default: flip; fast: flip + translate 2; guide: the guide's pipeline")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU, torch's on CUDA)")
    ap.add_argument("--wall-clock", action="store_true", help="time by wall clock on CPU too (default there: thread CPU time)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra spec override")
    ap.add_argument("--whole-run", action="store_true", help="whole fast94-shaped runs, engine vs bare (bench/whole_run.py)")
    ap.add_argument("--pairs", type=int, default=5, help="--whole-run: interleaved engine/bare pairs (default 5)")
    ap.add_argument("--epochs", type=int, default=10, help="--whole-run: epochs per run, one evaluation each (default 10)")
    args = ap.parse_args(argv)

    dev = setup(args)
    if args.whole_run:
        from bench.whole_run import whole_run

        return whole_run(args)
    spec = make_spec(args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    engine = Engine(spec)
    bare = Bare(spec, engine.trainer)
    tr = engine.trainer
    print(f"bench/engine_overhead.py: torch {torch.__version__}; {name}; torch threads {torch.get_num_threads()}; "
          f"load average {load:.1f}; timed by {CLOCK[1]}")
    print(f"{spec.model.name}, batch {spec.train.batch_size}, {len(tr.train_loader)} steps/epoch, "
          f"augment {engine.trainer.augment!r}, amp {tr.amp_dtype or 'off'}, channels_last {tr.channels_last}")

    engine.run_epoch(), bare.run_epoch()  # warm-up epoch each
    engine.images = bare.images = 0
    te, tb = [], []
    for r in range(args.repeats):
        pair = (engine, bare) if r % 2 == 0 else (bare, engine)
        for side in pair:
            (te if side is engine else tb).append(side.run_epoch())
    ips_e, ips_b = engine.images / sum(te), bare.images / sum(tb)
    ratio = statistics.median(b / e for e, b in zip(te, tb))
    ms_e = 1000 * sum(te) / (args.repeats * len(tr.train_loader))
    ms_b = 1000 * sum(tb) / (args.repeats * bare.nb)
    print(f"\n{args.repeats} rounds of one epoch each ({len(tr.train_loader)} steps), ABBA order")
    print(f"{'side':<34} {'images/s':>10} {'ms/step':>9} {'best epoch s':>13}")
    print(f"{'engine (Trainer.train_step loop)':<34} {ips_e:10,.0f} {ms_e:9.2f} {min(te):13.3f}")
    print(f"{'bare PyTorch loop':<34} {ips_b:10,.0f} {ms_b:9.2f} {min(tb):13.3f}")
    print(f"\nratio engine / bare (median of rounds): {ratio:.3f}; totals {ips_e / ips_b:.3f}; "
          f"best epochs {min(tb) / min(te):.3f} (target >= 0.95): {'PASS' if ratio >= 0.95 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
