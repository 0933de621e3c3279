"""A whole run's curves in bounded memory, for charts with a step axis: each metric's (step, value)
points from the first step on, thinned as the run grows so that no spike or dip is lost.

A viewer's tail (tail.py) keeps the last few thousand points of each metric; a chart that spans
the run needs its start as well. When a metric holds more than `cap` points, they are cut into
cap/4 equal spans of steps and each span keeps its lowest and highest point (in step order): an
alarm's grad-norm spike, or a loss that briefly fell, is still drawn after any number of thinnings.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

Point = tuple[int, float]
CAP = 1024  # points per metric: a chart is at most a few hundred braille dots wide


def extremes(points: Sequence[Point], buckets: int) -> list[Point]:
    """At most 2 x `buckets` (+ 2) points: the lowest and highest of each equal span of steps, in step
    order; the first and last points are kept, so the curve spans the same steps."""
    n = len(points)
    if n <= 2 * buckets or buckets < 1:
        return list(points)
    first = points[0][0]
    span = (points[-1][0] - first) / buckets or 1.0
    out: list[Point] = []
    chunk: list[Point] = []
    current = 0
    for p in points:
        b = min(int((p[0] - first) / span), buckets - 1)
        if b != current and chunk:
            out.extend(_low_high(chunk))
            chunk = []
        current = b
        chunk.append(p)
    out.extend(_low_high(chunk))
    if out[0] != points[0]:
        out.insert(0, points[0])
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def _low_high(chunk: list[Point]) -> list[Point]:
    lo = min(chunk, key=lambda p: p[1])
    hi = max(chunk, key=lambda p: p[1])
    return [lo] if lo == hi else sorted((lo, hi))


class History:
    """Every metric's points since the run's first step, at most `cap` each (see the module's note)."""

    def __init__(self, cap: int = CAP) -> None:
        self.cap = cap
        self._points: dict[str, list[Point]] = {}

    def add(self, fresh: Mapping[str, Iterable[Point]]) -> None:
        """Append new points per metric (in step order, as the store hands them out); non-finite values
        are left out, as every chart leaves them out."""
        for name, points in fresh.items():
            kept = self._points.setdefault(name, [])
            kept.extend((int(s), float(v)) for s, v in points if v is not None and math.isfinite(v))
            if len(kept) > self.cap:
                self._points[name] = extremes(kept, self.cap // 4)

    def points(self, name: str) -> list[Point]:
        return self._points.get(name, [])

    def names(self) -> list[str]:
        return [n for n, pts in self._points.items() if pts]

    @property
    def last_step(self) -> int:
        return max((pts[-1][0] for pts in self._points.values() if pts), default=0)

    def clear(self) -> None:
        self._points.clear()
