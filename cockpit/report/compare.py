"""Runs compared: the spec fields that differ, what was done to each run beyond its spec (its
interventions: LR set live, pauses, SWA by command, passes), results side by side, curves overlaid,
as plain data.

Made from the run store alone (each run's report summary); render/compare.py draws it for the
terminal, HTML or JSON. The first run is the baseline: deltas are against it.
"""

from __future__ import annotations

import json
from typing import Any

from engine.contracts import format_metric, metric_info
from engine.spec import flatten
from engine.store import Run

from .fmt import fmt_delta, fmt_delta_pct, fmt_duration, fmt_pct
from .summary import SCHEMA_VERSION, clean, summarize

# (key, label, higher is better) rows of the results table; key is "metric:<name>", "best:<name>",
# "pass:<name>" (a finishing pass's accuracy) or "run:<field>"
RESULT_ROWS = [
    ("selected:test_acc", "best.pt test accuracy", True), ("metric:test_acc", "final test accuracy", True),
    ("metric:test_loss", "final test loss", False), ("best:val_acc", "best.pt val accuracy", True),
    ("metric:train_acc", "final train accuracy", True), ("metric:train_loss", "final train loss", False),
    ("pass:swa", "SWA accuracy", True), ("pass:calibrated", "calibrated accuracy", True),
    ("ece:calibrated", "ECE after calibration", False), ("pass:tta", "TTA accuracy", True),
    ("pass:ensemble", "ensemble accuracy", True),
    ("metric:images_per_s", "images / s (last)", True), ("run:duration_s", "duration", False),
    ("run:step", "steps done", True),
]
# the curves overlaid, from the metric catalogue: (metric, title, y format "pct" | "num")
CURVE_METRICS = [(n, metric_info(n).label.capitalize(), "pct" if metric_info(n).fmt.endswith("%") else "num")
                 for n in ("test_acc", "train_loss", "test_loss", "train_acc", "val_acc", "lr", "grad_norm",
                           "images_per_s")]


def result_value(s: dict[str, Any], key: str) -> float | None:
    kind, _, name = key.partition(":")
    if kind == "metric":
        return s["metrics"]["final"].get(name)
    if kind == "best":
        b = s["metrics"]["best"].get(name)
        return b["value"] if b else None
    if kind == "selected":  # best.pt's evaluation (selected on validation), never the highest test figure
        sel = s["metrics"].get("selected") or {}
        return sel.get(name)
    if kind in ("pass", "ece"):
        row = next((r for r in s["finishing"] if r["pass"] == name), None)
        return (row["acc"] if kind == "pass" else row["ece"]) if row else None
    if kind == "run":
        return s["run"].get(name)
    return None


def fmt_result(key: str, v: Any) -> str:
    if v is None:
        return "–"
    kind, _, name = key.partition(":")
    if kind in ("pass", "ece"):
        return fmt_pct(v)
    if key == "run:duration_s":
        return fmt_duration(v)
    if key == "run:step":
        return f"{int(v):,}"
    return format_metric(name, v)


def delta_text(key: str, v: Any, base: Any, baseline: str = "A") -> str:
    """The change from the baseline run's value, naming it: '+1.20 pp vs A'."""
    if v is None or base is None or key in ("run:duration_s", "run:step"):
        return ""
    name = key.partition(":")[2]
    if key.startswith(("pass:", "ece:")) or name.endswith("acc"):
        d = fmt_delta_pct(v - base)
    elif name == "images_per_s":
        d = f"{(v / base - 1) * 100:+.1f}%" if base else ""
    else:
        d = fmt_delta(v - base)
    return f"{d} vs {baseline}" if d else ""


def compare_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison as plain data (what every compare format renders)."""
    flats = [flatten(s["spec"]) if s.get("spec") else {} for s in summaries]
    keys = sorted(set().union(*flats)) if flats else []
    diff = [{"key": k, "values": [f.get(k) for f in flats]} for k in keys
            if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    results = []
    for key, label, higher in RESULT_ROWS:
        vals = [result_value(s, key) for s in summaries]
        if all(v is None for v in vals):
            continue
        present = [(i, v) for i, v in enumerate(vals) if v is not None]
        best = (max if higher else min)(present, key=lambda p: p[1])[0] if len(present) > 1 else None
        if key in ("run:duration_s", "run:step"):
            best = None
        results.append({"key": key, "label": label, "values": vals, "best_index": best, "higher_is_better": higher})
    curves: dict[str, list[dict[str, Any]]] = {}
    for name, _, _ in CURVE_METRICS:
        per_run = []
        for s in summaries:
            sr = s["series"].get(name)
            spe = s["run"].get("steps_per_epoch") or 0
            if sr and sr["step"]:
                x = [st / spe for st in sr["step"]] if spe else list(sr["step"])
                per_run.append({"run_id": s["run"]["run_id"], "x": x, "y": sr["value"], "unit": "epoch" if spe else "step"})
        if per_run:
            curves[name] = per_run
    errors = [f"{s['run']['run_id']}: spec.toml does not validate ({s['spec_error']})" for s in summaries if s.get("spec_error")]
    return clean({
        "schema_version": SCHEMA_VERSION,
        "runs": [s["run"] | {"best_test_acc": result_value(s, "selected:test_acc")} for s in summaries],
        "diff": diff,
        "interventions": [s["interventions"] for s in summaries],
        "results": results,
        "curves": curves,
        "errors": errors,
    })


def compare_runs(runs: list[Run]) -> dict[str, Any]:
    return compare_summaries([summarize(r) for r in runs])
