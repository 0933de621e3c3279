"""Unicode sparklines for terminal views (Rich live view, reports, the TUI's panels)."""

from __future__ import annotations

import math
from typing import Callable

BARS = "▁▂▃▄▅▆▇█"
MIN_REL_SPAN = 0.2  # an honest scale spans at least 20% of the values' magnitude...
MIN_LOG_SPAN = 0.3  # ...or, on a log scale, 0.3 decades (a factor of 2)


def resample(values: list[float], width: int) -> list[float]:
    """At most `width` points: the mean of each bucket (keeps the shape of long curves)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if len(vals) <= width:
        return vals
    out = []
    for i in range(width):
        a, b = i * len(vals) // width, (i + 1) * len(vals) // width
        chunk = vals[a:max(b, a + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def honest_range(lo: float, hi: float, log: bool = False) -> tuple[float, float]:
    """The scale for values between lo and hi, padded around their middle so that a small relative
    change (an LR going from 0.1 to 0.096, throughput noise) draws as a small step, not a full-height fall."""
    floor = MIN_LOG_SPAN if log else MIN_REL_SPAN * max(abs(lo), abs(hi))
    if hi - lo >= floor:
        return lo, hi
    mid, half = (lo + hi) / 2, max(floor, 1e-12) / 2
    return mid - half, mid + half


def sparkline(values: list[float], width: int = 40, log: bool = False, honest: bool = False,
              fill: bool = False) -> str:
    """A one-line chart of `values`, scaled between their min and max (honest: see honest_range).
    `fill`: fewer values than `width` (two or more) are stretched over the whole width, each taking an
    equal share, so curves of one run with more and fewer points (train and test loss) span the same
    columns, as a chart's x axis spans the run."""
    vals = resample(values, width)
    if fill and 2 <= len(vals) < width:
        vals = [vals[i * len(vals) // width] for i in range(width)]
    if log:
        vals = [math.log10(v) for v in vals if v > 0]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if honest:
        lo, hi = honest_range(lo, hi, log)
    if hi - lo < 1e-12:
        return BARS[3] * len(vals)
    return "".join(BARS[max(0, min(int((v - lo) / (hi - lo) * len(BARS)), len(BARS) - 1))] for v in vals)


def span(values: list[float], percent: bool = False) -> str:
    """The range a sparkline spans, `lo‥hi` in compact numbers (one number when flat; "" when empty).
    The low end is rounded down and the high end up, so the printed range holds every value."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if lo == hi:
        return compact(lo, percent)
    return f"{compact(lo, percent, math.floor)}‥{compact(hi, percent, math.ceil)}"


def compact(v: float, percent: bool = False, toward: Callable[[float], int] | None = None) -> str:
    """A number in at most about 5 characters, for a range beside a sparkline: 0.096, 2.6k, 84%.
    `toward` (math.floor or math.ceil) rounds in that direction instead of to the nearest."""
    if percent:
        digits = 0 if abs(v) >= 0.1 else 1
        x = v * 100
        if toward is not None:
            x = _directed(x * 10**digits, toward) / 10**digits
        return f"{x:.{digits}f}%"
    sig = 2 if v and abs(v) < 1e-3 else 3
    if toward is not None and v:
        scale = 10.0 ** (math.floor(math.log10(abs(v))) - sig + 1)
        v = _directed(v / scale, toward) * scale
    a = abs(v)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= limit:
            return f"{v / limit:.3g}{suffix}"
    return f"{v:.{sig}g}"


def _directed(x: float, toward: Callable[[float], int]) -> int:
    """floor or ceil of x, ignoring float noise below 1e-9 (7.000000000000001 is 7)."""
    return toward(round(x, 9))
