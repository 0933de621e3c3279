"""The worker's word that a run is sized for a GPU while it trains on a CPU (the `SlowOnCPU` event,
written once after the first metrics window), as the live view, the plain lines and the dashboard say it."""

from __future__ import annotations

from typing import Any, Iterable, Mapping


def gpu_sized_notice(events: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run's SlowOnCPU event (its id and message), or None."""
    from engine.contracts import SlowOnCPU  # pydantic: not on the TUI's first paint

    return next((e for e in events if e["kind"] == SlowOnCPU.KIND), None)
