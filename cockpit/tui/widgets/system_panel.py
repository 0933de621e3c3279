"""The System panel: CPU, RAM and disk of the worker's host, and each GPU's utilisation, memory,
temperature and power, from the `system/*` metrics the worker samples into run.db (engine/system.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from engine.contracts import format_metric, metric_info

if TYPE_CHECKING:  # plotext loads only where a chart is shown
    from .panel_chart import PanelChart

# each panel line fits a 40-column panel (two panels side by side at 80x24)
# (label, metric); the label "(" puts the value in parentheses after the one before it
HOST = ((("CPU", "system/cpu"), ("RAM", "system/ram_gb"), ("(", "system/ram")),
        (("disk", "system/disk"), ("worker", "system/worker_ram_gb")))
GPU = ((("util", "util"), ("mem", "mem_gb"), ("(", "mem")), (("", "temp_c"), ("", "power_w")))


def _value(name: str, value: float | None) -> str:
    unit, text = metric_info(name).unit, format_metric(name, value)
    return f"{text}{unit}" if unit in ("", "°C") else f"{text} {unit}"


def _line(head: str, parts: tuple[tuple[str, str], ...], last: Mapping[str, float], prefix: str = "") -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{head:<5}", style="bold")
    shown = [(label, prefix + name) for label, name in parts if prefix + name in last]
    for i, (label, name) in enumerate(shown):
        if label == "(":
            line.append(f" ({_value(name, last[name])})")
            continue
        line.append(("" if i == 0 else " · ") + (f"{label} " if label else "") + _value(name, last[name]))
    return line


def system_lines(meta: Mapping[str, Any], last: Mapping[str, float]) -> list[Text]:
    """The panel's lines: the host, then two per GPU (or "no GPU"); words, not colours (NO_COLOR)."""
    if not any(n.startswith("system/") for n in last):
        said = "no system metrics in this run" if "gpus" not in meta and meta.get("ended") else \
            "waiting for the worker's first sample"
        return [Text(said, style="dim")]
    lines = [_line("host", HOST[0], last), _line("", HOST[1], last)]
    indices = [g["index"] for g in meta.get("gpus") or []] or \
        sorted({int(n.split("/")[1][3:]) for n in last if n.startswith("system/gpu") and n.split("/")[1][3:].isdigit()})
    names = {g["index"]: g.get("name") for g in meta.get("gpus") or []}
    if not indices:
        lines.append(Text.assemble(("GPU  ", "bold"), "no GPU"))
    for i in indices:
        prefix = f"system/gpu{i}/"
        lines += [_line(f"gpu{i}", GPU[0], last, prefix), _line("", GPU[1], last, prefix)]
        if names.get(i):
            lines[-1].append(("  " if len(lines[-1]) > 5 else "") + str(names[i]), style="dim")
    return lines


class SystemPanel(Vertical, can_focus=True):
    """A titled box like the trace panels; `show(meta, last)` with a reading's meta and last values.
    Where the terminal has room, the dashboard adds a chart of the percentages (CPU, RAM, disk, each
    GPU's utilisation and memory) and the stylesheet hides the lines."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, classes="trace-panel system-panel")
        self.border_title = "System"
        self.chart: PanelChart | None = None

    def compose(self) -> ComposeResult:
        yield Static(system_lines({}, {})[0], classes="system-lines")

    def show(self, meta: Mapping[str, Any], last: Mapping[str, float]) -> None:
        self.query_one(".system-lines", Static).update(Text("\n").join(system_lines(meta, last)))

    def add_chart(self, chart: PanelChart) -> None:
        self.chart = chart
        self.mount(chart)


def charted(names) -> list[tuple[str, str]]:
    """(label, metric) of the system metrics a chart draws: the percentages, which share one axis."""
    return [(n[len("system/"):], n) for n in names
            if n.startswith("system/") and metric_info(n).fmt.endswith("%")]
