"""A titled box of metric lines (loss, accuracy, LR per group...); lines per group appear as the
worker reports them (`lr/<group>`, `grad_norm/<group>`)."""

from __future__ import annotations

from typing import Callable, Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .trace_line import TraceLine, fmt_g

Trace = tuple[str, str, Callable[[float], str], bool]  # label, metric, format, log scale


class TracePanel(Vertical):
    """The fixed traces of a panel plus one line per metric under `prefix` (if given)."""

    def __init__(self, title: str, traces: Iterable[Trace], prefix: str = "", prefix_fmt: Callable[[float], str] = fmt_g,
                 prefix_log: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="trace-panel")
        self.border_title = title
        self.traces = list(traces)
        self.prefix = prefix
        self.prefix_fmt = prefix_fmt
        self.prefix_log = prefix_log
        self._lines: dict[str, TraceLine] = {}

    def compose(self) -> ComposeResult:
        yield Static("no data yet", classes="trace-empty")
        for label, metric, fmt, log in self.traces:
            line = TraceLine(label, metric, fmt, log)
            self._lines[metric] = line
            yield line

    def update_from(self, names: Iterable[str], values: Callable[[str], list[float]]) -> None:
        """Refresh every line from the tail (`values(name)`); mount lines for new group metrics."""
        if self.prefix:
            new = [n for n in names if n.startswith(self.prefix) and n not in self._lines]
            for name in new:
                line = TraceLine(name[len(self.prefix):], name, self.prefix_fmt, self.prefix_log)
                self._lines[name] = line
                self.mount(line)
        any_data = False
        for name, line in self._lines.items():
            vals = values(name)
            if vals or line.values:
                line.set_values(vals)
            any_data = any_data or bool(vals)
        self.query_one(".trace-empty", Static).display = not any_data

    def clear(self) -> None:
        """Forget every value (another run is attached); per-group lines go away."""
        fixed = {metric for _, metric, _, _ in self.traces}
        for name, line in list(self._lines.items()):
            if name in fixed:
                line.set_values([])
            else:
                line.remove()
                del self._lines[name]
        self.query_one(".trace-empty", Static).display = True

    def line(self, metric: str) -> TraceLine | None:
        return self._lines.get(metric)
