"""The worker's start-up phase as the views say it, instead of `epoch 0/0 step 0/0 ETA --:--`.

The worker writes meta `phase` ({name, detail, done, total, since}: engine/phases.py) from its
start until its first metrics, then clears it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from engine.store import ACTIVE_STATES


@dataclass(frozen=True)
class StartupPhase:
    text: str  # e.g. "loading data · decoding train/ 12,800/50,000 (26%) · 7 s"
    fraction: float | None  # done/total within the phase, when it counts something


def startup_phase(meta: Mapping[str, Any], state: str, now: float | None = None) -> StartupPhase | None:
    """The phase of an active run that has not trained yet; None once it trains (or has ended)."""
    if state not in ACTIVE_STATES or state == "paused":
        return None
    phase = meta.get("phase")
    if not isinstance(phase, Mapping):
        return StartupPhase("starting the worker", None) if state == "created" and not meta.get("total_steps") else None
    parts = [str(phase.get("name") or "starting")]
    done, total = phase.get("done"), phase.get("total")
    fraction = None
    count = ""
    if isinstance(done, int) and isinstance(total, int) and total > 0:
        fraction = min(done / total, 1.0)
        count = f" {done:,}/{total:,} ({fraction:.0%})"
    if phase.get("detail") or count:
        parts.append(f"{phase.get('detail') or ''}{count}".strip())
    since = phase.get("since")
    if isinstance(since, (int, float)):
        parts.append(f"{max((now or time.time()) - since, 0):.0f} s")
    return StartupPhase(" · ".join(parts), fraction)
