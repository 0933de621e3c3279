"""How often the views read a run and redraw it: every 0.4 s on a local terminal; slower on a slow
SSH link, where each redraw of a live dashboard is kilobytes sent (`cockpit --refresh SECONDS`, or
the dashboard's key that cycles through RATES)."""

from __future__ import annotations

DEFAULT_S = 0.4  # the store is read (new rows only) well over twice a second
RATES = (0.4, 1.0, 2.0, 5.0)  # what the key cycles through


def next_rate(current: float) -> float:
    """The next slower rate after `current`, back to the fastest after the slowest."""
    slower = [r for r in RATES if r > current + 1e-9]
    return slower[0] if slower else RATES[0]


def rate_text(seconds: float) -> str:
    """`0.4 s`, `2 s`: how the status line says it."""
    return f"{seconds:g} s"
