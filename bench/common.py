"""What the CPU/GPU training benchmarks share: device and size defaults, and the clock they time by."""

from __future__ import annotations

import argparse
import time

import torch

from engine.runtime.device import resolve_device

# On a shared CPU, the training thread's CPU time varies ~5% where wall clock varies 15-40%;
# with one torch thread it measures the same work, so the CPU benches time by it.
CLOCK = [time.perf_counter, "wall time"]

NEVER = 1_000_000  # a cadence that never comes round: the spec's largest (steps)
MONITOR_OFF = [f"monitor.every={NEVER}", "monitor.grad_flow_every=0", "monitor.activations_every=0",
               "monitor.difficulty_every=0"]


def setup(args: argparse.Namespace) -> torch.device:
    """Resolve the device; fill in model, batch and threads defaults for it; pick the clock."""
    dev = resolve_device(args.device)
    args.device = dev.type
    args.model = args.model or ("resnet18" if dev.type == "cuda" else "tiny")
    args.batch = args.batch or (128 if dev.type == "cuda" else 64)
    if args.threads is None:
        args.threads = 1 if dev.type == "cpu" else 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if dev.type == "cpu" and torch.get_num_threads() == 1 and not args.wall_clock:
        CLOCK[:] = [time.thread_time, "CPU time of the training thread"]
    return dev
