"""Messages between the cockpit's widgets, screens and app, named as the events they report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message


class FieldEdited(Message):
    """A spec field's widget changed value (already parsed; may still be invalid)."""

    def __init__(self, path: str, value: Any) -> None:
        super().__init__()
        self.path = path
        self.value = value


class SpecChanged(Message):
    """The edited spec changed: its validity and the problems by dotted path."""

    def __init__(self, valid: bool, errors: list[tuple[str, str]], changes: int) -> None:
        super().__init__()
        self.valid = valid
        self.errors = errors
        self.changes = changes


class RunStarted(Message):
    """A run was created and its worker spawned from this TUI."""

    def __init__(self, path: Path, pid: int) -> None:
        super().__init__()
        self.path = path
        self.pid = pid


class RunChosen(Message):
    """The user picked a run to watch or review."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


@dataclass
class CommandAnswer:
    cid: int
    kind: str
    status: str  # done | failed | unanswered
    reply: str


@dataclass
class Reading:
    """What one poll of the run store found (made in a thread, applied on the event loop)."""

    state: str
    new_rows: bool
    new_events: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    answers: list[CommandAnswer] = field(default_factory=list)
    eta: float | None = None  # seconds left, from the worker's own timestamps
    error: str = ""
    source: int = 0  # which tail was read (a reading for a run no longer watched is dropped)


class MetricsArrived(Message):
    """A poll of the run store finished (new metric rows, events, results or command replies)."""

    def __init__(self, reading: Reading) -> None:
        super().__init__()
        self.reading = reading


class RunsScanned(Message):
    """The runs dir was scanned: one dict per run (run_id, state, preset, best_acc, started, path)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows
