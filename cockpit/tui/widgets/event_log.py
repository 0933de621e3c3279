"""The run's events and alarms, newest last: `step  ! kind: message` (marks, not only colours)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from cockpit.core.formats import LEVEL_STYLE

LEVEL_MARK = {"info": "·", "warning": "!", "error": "✗"}


class EventLog(RichLog):
    """Events from the run store (`events` table), appended as they arrive."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, min_width=20, wrap=True, markup=False, highlight=False,
                         auto_scroll=True)
        self.border_title = "Events & alarms"
        self.seen = 0
        self.alarms = 0

    def add_events(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            if ev["id"] <= self.seen:
                continue
            self.seen = ev["id"]
            level = ev.get("level", "info")
            if level in ("warning", "error"):
                self.alarms += 1
            line = Text(no_wrap=False)
            line.append(f"{ev.get('step', 0):>6} ", style="dim")
            line.append(f"{LEVEL_MARK.get(level, '·')} ", style=LEVEL_STYLE.get(level, ""))
            line.append(f"{ev['kind']}: ", style=LEVEL_STYLE.get(level, "") or "bold")
            line.append(str(ev["message"]))
            self.write(line)
        self.border_title = f"Events & alarms ({self.alarms} alarm{'s' if self.alarms != 1 else ''})"

    def add_reply(self, kind: str, status: str, reply: str) -> None:
        """A worker's answer to a command sent from this TUI (not stored as an event by every worker)."""
        line = Text(no_wrap=False)
        line.append("     » ", style="dim")
        line.append(f"{kind} {status}: ", style="bold red" if status == "failed" else "bold")
        line.append(reply or "done")
        self.write(line)

    def reset(self) -> None:
        self.clear()
        self.seen = 0
        self.alarms = 0
        self.border_title = "Events & alarms"
