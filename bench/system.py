"""The system sampler's cost for bench/instruments.py: what one sample takes (psutil + NVML on the
host, no device sync) and what that is per second of training at the sampler's cadence."""

from __future__ import annotations

import tempfile
import time

import torch

from engine.system import EVERY_S, SystemSampler


def system_cost(device: torch.device, samples: int = 200) -> dict:
    """Time `samples` samples and the not-due check made at every window flush; print the ratio of
    training time with the sampler to without it (one sample per EVERY_S seconds)."""
    indices = [device.index or 0] if device.type == "cuda" else []
    with tempfile.TemporaryDirectory() as tmp:
        sampler = SystemSampler(indices, tmp)
        try:
            sampler.sample()  # warm: first NVML/psutil calls
            t0 = time.perf_counter()
            for _ in range(samples):
                rows = sampler.sample()
            per_sample = (time.perf_counter() - t0) / samples
            t0 = time.perf_counter()
            for _ in range(samples):
                sampler.rows()  # not due: the monotonic-clock check every flush makes
            per_check = (time.perf_counter() - t0) / samples
        finally:
            sampler.close()
    ratio = 1 + per_sample / EVERY_S  # seconds of training per second, with vs without the sampler
    print(f"system sampler: {len(rows)} rows per sample ({'GPU ' + str(indices) if indices else 'no GPU'}); "
          f"{per_sample * 1e6:,.0f} us per sample, {per_check * 1e6:.2f} us per not-due check; one sample per "
          f"{EVERY_S:g} s: training time with / without the sampler = {ratio:.6f}")
    return {"us_per_sample": per_sample * 1e6, "us_per_check": per_check * 1e6, "ratio": ratio, "rows": len(rows)}
