"""Number, time and label formatting shared by every report format (HTML, Markdown, terminal)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterable

from cockpit.core.formats import fmt_duration, fmt_pct, fmt_pct_std, metric_label  # noqa: F401 (the reports' formats)
from engine.contracts import CALIBRATE_METHODS, METRICS, format_metric, metric_info

from .schema import Summary

# the metrics table: (metric, label) in the catalogue's order (difficulty has a section of its own)
KEY_METRICS = [(name, metric_label(name)) for name, info in METRICS.items() if info.group != "difficulty"]
PASS_LABELS = {"base": "base", "swa": "SWA", "calibrated": "calibrated", "tta": "TTA", "ensemble": "ensemble"}
# the per-layer table: (summary key, heading); fractions are shown as percentages
LAYER_COLUMNS = [("grad_norm", "grad norm"), ("update_ratio", "update ratio"), ("lr", "lr"), ("act_mean", "act mean"),
                 ("act_std", "act std"), ("act_zeros", "zeros"), ("act_dead", "dead"), ("act_saturation", "saturation"),
                 ("act_gate_mean", "gate mean"), ("act_gate", "gate saturation")]
LAYER_FRACTIONS = ("act_zeros", "act_dead", "act_saturation", "act_gate")


def curve_rows(names: Iterable[str]) -> list[tuple[str, str, bool]]:
    """(label, metric, log scale) of each metric, from the catalogue: the report's sparkline rows."""
    return [(metric_label(n), n, metric_info(n).log) for n in names]


def fmt_delta_pct(v: float | None) -> str:
    """Accuracy deltas in percentage points."""
    return "" if v is None else f"{v * 100:+.2f} pp"


def fmt_delta(v: float | None) -> str:
    return "" if v is None else f"{v:+.4f}"


def fmt_num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def fmt_time(ts: float | None) -> str:
    if not ts:
        return "–"
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def fmt_clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else ""


def fmt_value(v: Any) -> str:
    """A spec value as TOML would write it (for the spec diff)."""
    if v is None:
        return "(absent)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {fmt_value(x)}" for k, x in v.items()) + "}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def progress_text(run: dict[str, Any]) -> str:
    step, total = run.get("step") or 0, run.get("total_steps") or 0
    epochs, ep = run.get("epochs") or 0, run.get("epoch")
    parts = [f"step {step:,}" + (f" / {total:,}" if total else "")]
    if ep is not None and epochs:
        parts.append(f"epoch {ep:.2f} / {epochs}")
    return " · ".join(parts)


def compact_toml(text: str) -> str:
    """Inline short multi-line arrays (`scale = [\\n 0.08,\\n 1.0,\\n]` -> `scale = [0.08, 1.0]`); still TOML."""
    def inline(m: re.Match) -> str:
        items = [x.strip().rstrip(",") for x in m.group(2).strip().splitlines() if x.strip()]
        return f"{m.group(1)}[{', '.join(items)}]"

    return re.sub(r"^(\S.* = )\[\n((?:[ \t]+.*,\n)*)\]$", inline, text, flags=re.M)


def toml_tables(text: str) -> list[tuple[str, str]]:
    """The TOML text split at its [table] headers: (header, block) pairs (comments dropped)."""
    blocks: list[tuple[str, list[str]]] = [("", [])]
    for line in compact_toml(text).splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("["):
            blocks.append((line.strip("[] "), [line]))
        else:
            blocks[-1][1].append(line)
    return [(h, "\n".join(lines).strip("\n")) for h, lines in blocks if "\n".join(lines).strip()]


def class_names(summary: Summary) -> list[str]:
    """The data set's class names: the confusion matrix's, else the hardest examples' ([] when neither has them)."""
    results = summary.get("results") or {}
    for kind in ("confusion", "hardest"):
        if names := (results.get(kind) or {}).get("classes"):
            return [str(c) for c in names]
    return []


def confusion_model(summary: Summary) -> str:
    """Which model the confusion matrix and per-class accuracy describe: 'best.pt · step 196'."""
    conf = (summary.get("results") or {}).get("confusion") or {}
    ckpt, step = conf.get("checkpoint") or conf.get("_checkpoint") or "model", conf.get("_step")
    return f"{ckpt} · step {step:,}" if isinstance(step, int) else str(ckpt)


def calibration_method(cal: dict[str, Any]) -> str:
    """How the calibration result's temperature was fitted: 'log_t (LBFGS on log T from T = 1 with a line search)'."""
    method = cal.get("method") or "log_t"  # results stored before methods were named were all log_t
    return f"{method} ({CALIBRATE_METHODS[method]})" if method in CALIBRATE_METHODS else str(method)


def selection_line(summary: Summary) -> str:
    """'best.pt: step N, the highest validation accuracy (test accuracy X)', or '' before an evaluation."""
    sel = (summary.get("metrics") or {}).get("selected")
    if not sel:
        return ""
    acc = sel.get("test_acc")
    return sel["says"] + (f"; its test accuracy {fmt_pct(acc)}" if acc is not None else "")


def per_class_acc(summary: Summary) -> tuple[list[str], list[float | None]]:
    """(class names, accuracy per class) from the confusion result (its per_class_acc, else the matrix)."""
    conf = (summary.get("results") or {}).get("confusion") or {}
    matrix = conf.get("matrix") or []
    accs = conf.get("per_class_acc")
    if not accs and matrix:
        accs = [(row[i] / s) if (s := sum(x or 0 for x in row)) else None for i, row in enumerate(matrix)]
    accs = list(accs or [])
    names = class_names(summary)
    if len(names) != len(accs):
        names = [str(i) for i in range(len(accs))]
    return names, accs


def marker_events(summary: Summary) -> list[dict[str, Any]]:
    """Events drawn on the charts, numbered 1.. (the same numbers in every chart and the timeline table)."""
    out = []
    for e in summary.get("events") or []:
        if e.get("marker"):
            out.append(e | {"n": len(out) + 1})
    return out


def layer_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The per-layer columns that have a value in at least one row."""
    return [c for c in LAYER_COLUMNS if any(c[0] in r for r in rows)]


def layer_cell(row: dict[str, Any], key: str) -> str:
    v = row.get(key)
    if v is None:
        return "–"
    return fmt_pct(v) if key in LAYER_FRACTIONS else fmt_num(v, 3)


PEAK_NOTE = ("peak: the highest accuracy (lowest loss) measured at any evaluation or window, shown for reference; "
             "it chose nothing (best.pt is chosen on validation accuracy, else it is the last evaluation)")
METRIC_COLUMNS = ("metric", "final", "best.pt", "peak", "peak at step")


def metric_rows(summary: Summary) -> list[tuple[str, str, str, str, str, str]]:
    """The metrics table: (label, name, final, at best.pt's evaluation, peak, the peak's step) per metric."""
    m = summary["metrics"]
    final, best, peak = m["final"], m["best"], m.get("peak") or {}
    rows = []
    for name, label in KEY_METRICS:
        if name not in final and name not in peak:
            continue
        b, p = best.get(name), peak.get(name)
        rows.append((label, name, format_metric(name, final.get(name)), format_metric(name, b["value"]) if b else "",
                     format_metric(name, p["value"]) if p else "", f"{p['step']:,}" if p else ""))
    return rows


def best_headline(summary: Summary) -> tuple[str, str] | None:
    """('59.14%', 'best.pt · step 84 · chosen on val acc'): the one "best test accuracy" a report shows."""
    sel = (summary.get("metrics") or {}).get("selected")
    if not sel or sel.get("test_acc") is None:
        return None
    how = "chosen on val acc" if sel.get("basis") == "val_acc" else "the last evaluation (no val split)"
    return fmt_pct(sel["test_acc"]), f"best.pt · step {sel['step']:,} · {how}"
