"""Drawing blocks for the terminal report and comparison: step-aligned sparklines, the event strip
under them, the curves table, and bars."""

from __future__ import annotations

import math
from typing import Any, Iterable

from rich.table import Table
from rich.text import Text

from cockpit.core.formats import LEVEL_STYLE
from cockpit.core.sparkline import BARS, honest_range
from engine.contracts import format_metric
from ..schema import Summary

MARKER_STYLE = {"set_lr": "blue", "paused": "bright_black", "continued": "bright_black", "resumed": "bright_black",
                "swa_started": "magenta", "swa_finished": "magenta", "checkpoint": "cyan", "resumed_run": "cyan",
                "stopped": "yellow", "failed": "red", "crashed": "red"}


def marker_style(e: dict[str, Any]) -> str:
    return MARKER_STYLE.get(e["kind"]) or LEVEL_STYLE.get(e["level"], "") or "white"


def step_spark(steps: list[int], values: list[float | None], x1: int, width: int, log: bool = False,
               scale: tuple[float, float] | None = None) -> str:
    """A sparkline whose columns are step ranges 0..x1 (so every curve and the event strip line up).

    scale: a shared (lo, hi) for several sparklines (in log10 when log); default: this curve's own range
    on the live view's honest scale (a 0.5-point wobble is not stretched to full height).
    """
    pts = [(s, v) for s, v in zip(steps, values) if v is not None and math.isfinite(v) and (v > 0 or not log)]
    if not pts or width <= 0:
        return ""
    if log:
        pts = [(s, math.log10(v)) for s, v in pts]
    x1 = max(x1, pts[-1][0], 1)
    cols: list[list[float]] = [[] for _ in range(width)]
    for s, v in pts:
        cols[min(int(s / x1 * width), width - 1) if x1 else 0].append(v)
    vals: list[float | None] = [sum(c) / len(c) if c else None for c in cols]
    known = [i for i, v in enumerate(vals) if v is not None]
    for a, b in zip(known, known[1:]):  # fill gaps between measured columns
        for i in range(a + 1, b):
            vals[i] = vals[a] + (vals[b] - vals[a]) * (i - a) / (b - a)
    present = [v for v in vals if v is not None]
    lo, hi = scale if scale is not None else honest_range(min(present), max(present), log)
    out = []
    for v in vals:
        if v is None:
            out.append(" ")
        elif hi - lo < 1e-12:
            out.append(BARS[3])
        else:
            out.append(BARS[max(0, min(int((v - lo) / (hi - lo) * len(BARS)), len(BARS) - 1))])
    return "".join(out)


def event_strip(markers: list[dict[str, Any]], x1: int, width: int) -> Text:
    """The numbered events under the sparklines, at their step columns."""
    cells: list[tuple[str, str]] = [(" ", "")] * width
    for m in markers:
        i = min(int(m["step"] / max(x1, 1) * width), width - 1)
        label = str(m["n"])
        if all(cells[j][0] == " " for j in range(i, min(i + len(label), width))):
            for k, ch in enumerate(label):
                if i + k < width:
                    cells[i + k] = (ch, f"bold {marker_style(m)}")
        elif cells[i][0] == " ":
            cells[i] = ("▲", marker_style(m))
    t = Text()
    for ch, st in cells:
        t.append(ch, st)
    return t


def curves_table(s: Summary, curves: Iterable[tuple[str, str, bool]], width: int,
                 markers: list[dict[str, Any]] | None = None) -> Table | None:
    """One row per curve: last, min, max and a step-aligned sparkline that takes the rest of the width."""
    series = s["series"]
    run = s["run"]
    x1 = max(run.get("total_steps") or 0, run.get("step") or 0, 1)
    rows: list[tuple[str, str, str, str, str, list, bool]] = []
    for label, name, log in curves:
        sr = series.get(name)
        vals = [v for v in (sr or {}).get("value", []) if v is not None]
        if not vals:
            continue
        last = next(v for v in reversed(sr["value"]) if v is not None)
        rows.append((label, format_metric(name, last), format_metric(name, min(vals)), format_metric(name, max(vals)),
                     name, sr, log))
    if not rows:
        return None
    head = f"steps 0 → {x1:,}"
    widths = [max(len(r[i]) for r in rows + [("curve", "last", "min", "max")]) for i in range(4)]
    widths[0] = max(widths[0], len("events") if markers else 0)
    spark_w = max(width - sum(widths) - 2 * 4 - 1, 12)
    t = Table(box=None, show_header=True, header_style="bold grey50", pad_edge=False, padding=(0, 1))
    t.add_column("curve", style="bold", no_wrap=True, min_width=widths[0])
    t.add_column("last", justify="right", no_wrap=True, min_width=widths[1])
    t.add_column("min", justify="right", no_wrap=True, style="grey50", min_width=widths[2])
    t.add_column("max", justify="right", no_wrap=True, style="grey50", min_width=widths[3])
    t.add_column(head, no_wrap=True, style="cyan", overflow="crop")
    for label, last, lo, hi, name, sr, log in rows:
        t.add_row(label, last, lo, hi, step_spark(sr["step"], sr["value"], x1, spark_w, log))
    if markers:
        t.add_row(Text("events", style="grey50"), "", "", "", event_strip(markers, x1, spark_w))
    return t


def bar(frac: float | None, width: int, mark: float | None = None) -> Text:
    """A horizontal bar `width` cells long, filled to `frac` in eighths; `mark` draws a red │ at that fraction."""
    if frac is None:
        return Text("")
    n = max(0.0, min(frac, 1.0)) * width
    full = int(n)
    partial = " ▏▎▍▌▋▊▉"[int((n - full) * 8)] if full < width else ""
    txt = Text("█" * full + partial.strip(), style="blue")
    txt.append(" " * (width - len(txt.plain)))
    if mark is not None:
        i = min(int(mark * width), width - 1)
        chars = list(txt.plain)
        chars[i] = "│"
        marked = Text()
        for k, ch in enumerate(chars):
            marked.append(ch, "bold red" if k == i else "blue")
        return marked
    return txt
