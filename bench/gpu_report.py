"""bench/gpu.py's output and guards: rows `figure | value | device`, the time budget, where a failure came from."""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def quiet(_msg: str) -> None:
    pass


class Report:
    """Rows `figure | value | device`, printed as they come and kept for the table and the JSON."""

    def __init__(self, device_label: str, save: Callable[["Report"], None] | None = None):
        """`save`: called after every row, so a killed run still leaves what it had (the JSON file)."""
        self.device, self.save = device_label, save
        self.rows: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def row(self, figure: str, value: str, number: float | None = None, unit: str = "", ok: bool = True,
            data: dict[str, Any] | None = None) -> None:
        """`data`: the figures behind the row, kept in the JSON only (per seed: time, parts, counts)."""
        r = {"figure": figure, "value": value, "device": self.device}
        if data is not None:
            r["data"] = data
        if number is not None and math.isfinite(number):
            r["number"], r["unit"] = number, unit
        if not ok:
            r["failed"] = True
            self.failures.append(figure)
        self.rows.append(r)
        print(f"{figure} | {value} | {self.device}", flush=True)
        if self.save is not None:
            self.save(self)

    def table(self) -> str:
        w1 = max(len("figure"), *(len(r["figure"]) for r in self.rows))
        w2 = max(len("value"), *(len(r["value"]) for r in self.rows))
        w3 = max(len("device"), *(len(r["device"]) for r in self.rows))
        lines = [f"| {'figure':<{w1}} | {'value':<{w2}} | {'device':<{w3}} |", f"| {'-' * w1} | {'-' * w2} | {'-' * w3} |"]
        lines += [f"| {r['figure']:<{w1}} | {r['value']:<{w2}} | {r['device']:<{w3}} |" for r in self.rows]
        return "\n".join(lines)


class Budget:
    def __init__(self, seconds: float):
        self.start, self.total = time.perf_counter(), seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.total - self.elapsed()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"


def _where(f: traceback.FrameSummary) -> str:
    name = f.filename
    for base in (str(ROOT) + os.sep, *(p + os.sep for p in sys.path if p and "site-packages" in p)):
        if name.startswith(base):
            name = name[len(base):]
            break
    return f"{name}:{f.lineno} {f.name}"


def engine_frame(exc: BaseException) -> str:
    """Where an error came from: the innermost frame inside engine/, and the innermost frame of all if different."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    mine = [f for f in frames if f"{os.sep}engine{os.sep}" in f.filename]
    if not mine:
        return _where(frames[-1])
    text = _where(mine[-1])
    if frames[-1] is not mine[-1]:
        text += f" (innermost: {_where(frames[-1])})"
    return text


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def guarded(report: Report, what: str, fn: Callable[[], Any]) -> Any:
    """Run one part (or sub-part); a failure becomes a FAIL row and the script goes on."""
    try:
        return fn()
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure and carries on
        report.row(what, f"FAIL: {first_line(exc)} at {engine_frame(exc)}", ok=False)
        if os.environ.get("BENCH_TRACEBACK"):
            traceback.print_exc()
        return None


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0)
