"""What a full chart draws, as plain data: each metric's (step, value) points, the events worth a
marker (LR changes, pauses, SWA), and the window of steps in view (zoom and pan)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from engine.store import Run

# event kinds drawn as vertical markers, and the short label each gets
MARKED_EVENTS = {"set_lr": "set-lr", "paused": "pause", "continued": "continue", "swa_started": "SWA",
                 "resumed": "resume", "resume_requested": "resume"}


@dataclass
class ChartData:
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # metric -> (step, value)
    markers: list[tuple[int, str]] = field(default_factory=list)  # (step, label)
    state: str = ""

    @property
    def last_step(self) -> int:
        return max((pts[-1][0] for pts in self.series.values() if pts), default=0)


def load_chart(path: Path, metrics: list[str], prefixes: tuple[str, ...] = ()) -> ChartData:
    """Read the named metrics (and every metric under `prefixes`) and the marked events, read-only."""
    run = Run(path, readonly=True)
    try:
        names = list(metrics)
        if prefixes:
            names += [n for n in run.metric_names() if n.startswith(prefixes) and n not in names]
        series = {n: [(int(s), v) for s, v in run.series(n) if v is not None and math.isfinite(v)] for n in names}
        markers = [(int(e["step"] or 0), MARKED_EVENTS[e["kind"]]) for e in run.events_since(0)
                   if e["kind"] in MARKED_EVENTS]
        return ChartData({n: pts for n, pts in series.items() if pts}, markers, run.meta().get("state", ""))
    finally:
        run.close()


@dataclass
class Window:
    """The steps in view: the whole run, or a zoomed part of it that pans."""

    lo: float = 0.0
    hi: float = 0.0
    zoomed: bool = False

    def fit(self, last_step: int) -> None:
        if not self.zoomed:
            self.lo, self.hi = 0.0, float(max(last_step, 1))

    def zoom(self, factor: float, last_step: int) -> None:
        """factor < 1 zooms in around the middle of the view; the view never grows past the run."""
        mid, half = (self.lo + self.hi) / 2, (self.hi - self.lo) / 2 * factor
        half = min(max(half, 2.0), max(last_step, 1) / 2)
        self.lo, self.hi = mid - half, mid + half
        self.zoomed = True
        self.pan(0.0, last_step)

    def pan(self, fraction: float, last_step: int) -> None:
        width = self.hi - self.lo
        lo = min(max(self.lo + fraction * width, 0.0), max(float(last_step) - width, 0.0))
        self.lo, self.hi = lo, lo + width

    def reset(self, last_step: int) -> None:
        self.zoomed = False
        self.fit(last_step)

    def clip(self, points: list[tuple[int, float]], log: bool = False) -> tuple[list[int], list[float]]:
        """The points in view (positive ones only on a log scale)."""
        kept = [(s, v) for s, v in points if self.lo <= s <= self.hi and (v > 0 or not log)]
        return [s for s, _ in kept], [v for _, v in kept]


def nice_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside lo..hi, as many as fit in `most`
    (at least two where the range allows): an axis reads 0 / 10k / 20k rather than 0.0 / 249.8 / 499.5."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or most < 2:
        return [lo] if math.isfinite(lo) else []
    power = 10.0 ** math.floor(math.log10((hi - lo) / most))
    for step in (m * power * scale for scale in (1, 10, 100) for m in (1, 2, 5)):
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= most:
            return [round(k * step, 12) for k in range(first, last + 1)]
    return [lo, hi]
