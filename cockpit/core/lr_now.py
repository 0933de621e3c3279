"""What a live LR change means: the value typed is the base LR (the SWA LR while SWA runs), and the
schedule multiplies it by a factor that changes every step. The dialog says both, and what they make now
("0.2 x cosine 0.79 = 0.158 now"), so that nobody types the LR they see and gets it times the factor."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.store import Run

from .interventions import event_data


@dataclass(frozen=True)
class LRNow:
    base: float  # what a value typed replaces: the base LR, or the SWA LR while SWA runs
    swa: bool
    schedule: str  # the spec's schedule name ("SWA" while SWA runs)
    factor: float | None  # what the schedule multiplies the base by at the last recorded step
    step: int | None  # that step

    @property
    def now(self) -> float | None:
        return None if self.factor is None else self.base * self.factor

    def text(self) -> str:
        what = "SWA LR" if self.swa else "base LR"
        if self.factor is None:
            return f"the value is the {what}, now {self.base:.3g}"
        return (f"the value is the {what}: {self.base:.3g} x {self.schedule} {self.factor:.3g} = {self.now:.3g} now"
                f" (step {self.step:,})")


def lr_now(spec: Mapping[str, Any], events: Iterable[Mapping[str, Any]], last_lr: tuple[int, float] | None) -> LRNow:
    """From the run's spec (its TOML as a dict), its events, and the last recorded (step, `lr`): the `lr`
    metric is the base LR times the schedule's factor at that step (the base in force then, which a later
    set-lr may have changed since)."""
    events = list(events)
    swa_start = next((int(e["step"] or 0) for e in events if e["kind"] == "swa_started"), None)
    swa = swa_start is not None
    if swa:
        first = (spec.get("swa") or {}).get("lr")
        schedule = "SWA"
    else:
        first = (spec.get("optim") or {}).get("lr")
        schedule = str((spec.get("schedule") or {}).get("name") or "schedule")
    changes = [(int(e["step"] or 0), data["lr"]) for e in events if e["kind"] == "set_lr"
               for data in [event_data(e["data"])] if data.get("lr") is not None and bool(data.get("swa")) == swa]
    base = changes[-1][1] if changes else float(first or 0.0)
    if last_lr is None or not base or (swa and last_lr[0] <= swa_start):  # no step under SWA recorded yet
        return LRNow(base, swa, schedule, None, None)
    step, lr = last_lr
    then = [v for s, v in changes if s < step]  # the step that recorded `lr` trained after these changes
    base_then = then[-1] if then else float(first or 0.0)
    factor = lr / base_then if base_then else None
    return LRNow(base, swa, schedule, factor, step)


def read_lr_now(path: Path) -> LRNow:
    """The run's LR now, read from its store (read-only: spec.toml, events, the `lr` metric)."""
    run = Run(path, readonly=True)
    try:
        spec = tomllib.loads((run.path / "spec.toml").read_text(encoding="utf-8"))
        series = run.series("lr")
        return lr_now(spec, run.events_since(0), series[-1] if series else None)
    finally:
        run.close()
