"""How every view writes a run's state, a duration and a start time (plain strings and Rich style
names; nothing here imports Rich or Textual)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from engine.store.lifecycle import NOT_RESPONDING

# style and mark per run state: the mark carries the meaning without colour (NO_COLOR)
STATE_STYLE = {
    "created": "yellow", "running": "bold green", "paused": "bold yellow", "finished": "bold green",
    "stopped": "yellow", "failed": "bold red", "crashed": "bold red", "unreadable": "bold red",
    NOT_RESPONDING: "bold red",
}
STATE_MARK = {
    "created": "○", "running": "▶", "paused": "⏸", "finished": "✓",
    "stopped": "■", "failed": "✗", "crashed": "✗", "unreadable": "!", NOT_RESPONDING: "?",
}
LEVEL_STYLE = {"info": "", "warning": "bold yellow", "error": "bold red"}


def fmt_duration(seconds: float | None) -> str:
    """A duration, elapsed or remaining, in every view: 45s, 1m 05s, 2h 03m, 1d 2h 03m (– when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    d = timedelta(seconds=s)
    hours = f"{d.seconds // 3600}h {d.seconds % 3600 // 60:02d}m"
    return f"{d.days}d {hours}" if d.days else hours


def fmt_pct(v: float | None, digits: int = 2) -> str:
    """A fraction as a percentage in every view: 0.5914 -> 59.14% (– when there is none or it is not finite)."""
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "–"
    return f"{v:.{digits}%}"


def fmt_pct_std(v: float | None, std: float | None, digits: int = 2) -> str:
    """A percentage with its spread where it has one: 0.842, 0.0061 -> 84.20% ± 0.61 (the std in points)."""
    text = fmt_pct(v, digits)
    if std is None or isinstance(std, bool) or not isinstance(std, (int, float)) or not math.isfinite(std) or text == "–":
        return text
    return f"{text} ± {100 * std:.{digits}f}"


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
    return fmt_pct(v) if v is not None else ""


def fmt_runtime(runtime: dict | None) -> str:
    """What actually ran (meta `runtime`), in one line: 'cuda:0 · bf16 autocast · torch.compile (mode default)
    · channels_last'; '' for a run that recorded none (it has not started, or an older cockpit ran it)."""
    if not isinstance(runtime, dict):
        return ""
    compiled = runtime.get("compile") or "off"
    parts = [runtime.get("device"), runtime.get("precision"), "eager" if compiled == "off" else compiled,
             runtime.get("memory_format")]
    return " · ".join(str(p) for p in parts if p)


def fmt_versions(runtime: dict | None, torch_version: str = "") -> str:
    """'torch 2.5.1 · CUDA 12.4 · cuDNN 90100' (CUDA and cuDNN only where the run used them)."""
    rt = runtime if isinstance(runtime, dict) else {}
    parts = [f"torch {rt.get('torch') or torch_version}" if rt.get("torch") or torch_version else ""]
    parts += [f"CUDA {rt['cuda']}" if rt.get("cuda") else "", f"cuDNN {rt['cudnn']}" if rt.get("cudnn") else ""]
    return " · ".join(p for p in parts if p)
