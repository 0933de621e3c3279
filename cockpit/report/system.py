"""The report's system part (in the throughput section): CPU, RAM, disk and each GPU as the worker
sampled them (`system/*` metrics, engine/system.py), as rows of last / min / max, or why there are none."""

from __future__ import annotations

from typing import Any

from engine.contracts import SYSTEM_GPU, format_metric

from .fmt import curve_rows
from .schema import Summary

HOST = ("system/cpu", "system/ram", "system/ram_gb", "system/worker_ram_gb", "system/disk")
TITLE = "System (sampled by the worker, at most every 2 s)"


def system_names(s: Summary) -> list[str]:
    """The system metrics the summary has series for: the host's, then each GPU's."""
    series = s["series"]
    order = list(SYSTEM_GPU)
    gpus = sorted((n for n in series if n.startswith("system/gpu")),
                  key=lambda n: (int(n.split("/")[1][3:] or 0) if n.split("/")[1][3:].isdigit() else 0,
                                 order.index(n.split("/")[-1]) if n.split("/")[-1] in order else 99))
    return [n for n in HOST if n in series] + gpus


def system_curves(s: Summary) -> list[tuple[str, str, bool]]:
    """(label, metric, log scale) rows for the renderers' curve tables."""
    return curve_rows(system_names(s))


def system_note(s: Summary) -> str:
    """A line that says what is missing: no system metrics at all, or no GPU."""
    names = system_names(s)
    if not names:
        return "no system metrics recorded (runs from before the system sampler have none)"
    return "" if any(n.startswith("system/gpu") for n in names) else "no GPU: the run trained on the CPU"


def system_table_rows(s: Summary) -> list[tuple[str, str, str, str]]:
    """(label, last, min, max) per system metric."""
    rows = []
    for label, name, _ in system_curves(s):
        vals = [v for v in s["series"][name]["value"] if v is not None]
        if vals:
            rows.append((label, format_metric(name, vals[-1]), format_metric(name, min(vals)),
                         format_metric(name, max(vals))))
    return rows
