"""Messages between the cockpit's widgets, screens and app, named as the events they report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # for the annotations only: the editor paints without the store readers
    from cockpit.core.reading import Reading
    from cockpit.core.runs import RunRow


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


class MetricsArrived(Message):
    """A poll of the run store finished (new metric rows, events, results or command replies)."""

    def __init__(self, reading: Reading) -> None:
        super().__init__()
        self.reading = reading


class RunsScanned(Message):
    """The runs dir was scanned: one row per run, oldest first."""

    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = rows
