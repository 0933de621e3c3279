"""Benchmark: channels_last against the default (NCHW) layout on the CPU, per training step.

    .venv/bin/python bench/channels_last_cpu.py [--batch 128] [--steps 8] [--threads 1]

What `train.channels_last_cpu = true` buys on the CPU (engine/setup.py): for each model (the tiny net
at widths 1 and 3, cpu_cifar10's whitened fastnet, and a thin ResNet-18) it times forward + backward of one
batch in both layouts, interleaved, and prints the CPU time per step of each and the ratio
(NCHW / channels_last: above 1 means channels_last is faster). CPU time on one thread stays steady
when other processes share the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.models import build_model  # noqa: E402
from engine.spec import ModelSpec  # noqa: E402

CPU_RECORD = {"name": "fastnet", "block_channels": [48, 96, 192], "whiten": 2, "whiten_stride": 2}  # cpu_cifar10's
MODELS = [("tiny x1", {"name": "tiny"}), ("tiny x3", {"name": "tiny", "width": 3.0}), ("cpu_cifar10", CPU_RECORD),
          ("resnet18 x0.25", {"name": "resnet18", "width": 0.25})]


def step_time(model: torch.nn.Module, x: torch.Tensor, steps: int) -> float:
    """Median CPU seconds of one forward + backward."""
    times = []
    for _ in range(steps):
        t = time.process_time()
        model(x).float().sum().backward()
        times.append(time.process_time() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'model':<16} {'NCHW ms':>9} {'channels_last ms':>17} {'ratio':>7}")
    for label, fields in MODELS:
        torch.manual_seed(0)
        plain = build_model(ModelSpec(**fields), 10)
        last = build_model(ModelSpec(**fields), 10).to(memory_format=torch.channels_last)
        x = torch.randn(args.batch, 3, 32, 32)
        xl = x.contiguous(memory_format=torch.channels_last)
        step_time(plain, x, 2), step_time(last, xl, 2)  # warm-up
        a = b = 0.0
        for _ in range(3):  # interleaved, so a busy machine slows both alike
            a += step_time(plain, x, args.steps)
            b += step_time(last, xl, args.steps)
        print(f"{label:<16} {a / 3 * 1e3:9.1f} {b / 3 * 1e3:17.1f} {a / b:7.2f}")


if __name__ == "__main__":
    main()
