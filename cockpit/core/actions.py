"""Why a dashboard key cannot act on the run being watched, as one sentence (None: it can).

The TUI hides nothing silently: a key whose action cannot run shows dimmed in the footer and,
when pressed, says this reason. Torch-free: it reads the run's state, spec and checkpoint files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.store import ACTIVE_STATES, Run

CHECKPOINTS = ("best.pt", "last.pt", "swa.pt")
# actions that only a live worker can carry out, and what each would have done
LIVE_ONLY = {"pause": "pause", "continue": "continue", "stop": "stop", "checkpoint": "checkpoint",
             "swa": "start SWA", "set_lr": "change the LR"}
OFFLINE_PASSES = ("calibrate", "tta")


@dataclass
class RunFacts:
    """What the keys depend on: the run's state, its validation split, its checkpoints, its kind."""

    path: Path | None = None
    state: str = ""
    val_size: int | None = None  # None: the spec could not be read
    kind: str = ""  # "lr_find" for an LR range test (no model)
    running: dict[str, float] = field(default_factory=dict)  # passes running here: kind -> start time

    def has_checkpoint(self) -> bool:
        return self.path is not None and any((self.path / "checkpoints" / n).is_file() for n in CHECKPOINTS)


def needs_live(action: str) -> bool:
    """An action only a live worker can carry out (hidden on a run that has ended)."""
    return action in LIVE_ONLY


def why_not(action: str, facts: RunFacts) -> str | None:
    """The reason `action` cannot act on this run now, or None when it can."""
    if facts.path is None:
        return "no run attached: r lists the runs"
    state = facts.state or "unknown"
    live = state in ACTIVE_STATES
    if action == "continue":
        return None if state == "paused" else f"the run is {state}, not paused"
    if action == "pause" and state == "paused":
        return "the run is already paused: p continues it"
    if action in LIVE_ONLY:
        return None if live else f"cannot {LIVE_ONLY[action]}: the run is {state}, only a live run takes commands"
    if action in OFFLINE_PASSES:
        return _why_not_pass(action, facts, live)
    return None


def _why_not_pass(action: str, facts: RunFacts, live: bool) -> str | None:
    if action in facts.running:
        return f"{action} is already running on this run"
    if action == "calibrate" and facts.val_size == 0:
        return "calibrate fits on a validation split and this run has none (data.val_size = 0)"
    if live:
        return None  # the worker computes it on its in-memory model
    if facts.kind == "lr_find":
        return f"an LR range test has no model to {action}"
    if not facts.has_checkpoint():
        return f"{action} needs a checkpoint and this run has none"
    return None


def facts_of(run: Run, path: Path) -> RunFacts:
    """The run's validation split and kind, read once when it is attached (the spec never changes)."""
    try:
        val_size = run.spec().data.val_size
    except Exception:
        val_size = None
    try:
        kind = run.meta().get("kind", "")
    except Exception:
        kind = ""
    return RunFacts(path=path, val_size=val_size, kind=kind or "")
