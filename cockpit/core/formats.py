"""How every view writes a run's state, a duration and a start time (plain strings and Rich style
names; nothing here imports Rich or Textual)."""

from __future__ import annotations

from datetime import datetime, timedelta

# style and mark per run state: the mark carries the meaning without colour (NO_COLOR)
STATE_STYLE = {
    "created": "yellow", "running": "bold green", "paused": "bold yellow", "finished": "bold green",
    "stopped": "yellow", "failed": "bold red", "crashed": "bold red", "unreadable": "bold red",
}
STATE_MARK = {
    "created": "○", "running": "▶", "paused": "⏸", "finished": "✓",
    "stopped": "■", "failed": "✗", "crashed": "✗", "unreadable": "!",
}
LEVEL_STYLE = {"info": "", "warning": "bold yellow", "error": "bold red"}


def fmt_clock_duration(seconds: float | None) -> str:
    """An elapsed or remaining time as H:MM:SS (`--:--` when unknown): ETAs and run times."""
    if seconds is None:
        return "--:--"
    return str(timedelta(seconds=int(max(seconds, 0))))


def fmt_started(ts: float | None) -> str:
    """A run's start time in the runs tables (month-day hour:minute; the run id holds the year)."""
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M") if ts else ""


def metric_label(name: str) -> str:
    """A metric's label from the catalogue, with its unit in parentheses where the label does not say it."""
    from engine.contracts import metric_info  # the catalogue loads pydantic: not on the TUI's first paint

    info = metric_info(name)
    if not info.unit or info.unit in info.label.replace(" ", ""):
        return info.label
    return f"{info.label} ({info.unit})"


def fmt_acc(v: float | None) -> str:
    """An accuracy in a table cell (empty when there is none)."""
    return f"{v:.2%}" if v is not None else ""
