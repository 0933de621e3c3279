"""Unicode sparklines for terminal views (Rich live view, reports)."""

from __future__ import annotations

import math

BARS = "▁▂▃▄▅▆▇█"


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


def sparkline(values: list[float], width: int = 40, log: bool = False) -> str:
    """A one-line chart of `values`, scaled between their min and max."""
    vals = resample(values, width)
    if log:
        vals = [math.log10(v) for v in vals if v > 0]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return BARS[3] * len(vals)
    return "".join(BARS[min(int((v - lo) / (hi - lo) * len(BARS)), len(BARS) - 1)] for v in vals)
