"""A titled box of metric lines (loss, accuracy, LR per group...); lines per group appear as the
worker reports them (`lr/<group>`, `grad_norm/<group>`). Where the terminal has room, the dashboard
adds a chart with axes to the box and its stylesheet hides the lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .trace_line import TraceLine

if TYPE_CHECKING:  # plotext loads only where a chart is shown
    from .panel_chart import PanelChart

Trace = tuple[str, str]  # label, metric name


class TracePanel(Vertical, can_focus=True):
    """The fixed traces of a panel plus one line per metric under `prefix` (if given); focusable, so
    Tab reaches it and Enter opens it as a full chart."""

    def __init__(self, title: str, traces: Iterable[Trace], prefix: str = "", id: str | None = None) -> None:
        super().__init__(id=id, classes="trace-panel")
        self.border_title = title
        self.traces = list(traces)
        self.prefix = prefix
        self._lines: dict[str, TraceLine] = {}
        self.chart: PanelChart | None = None  # the chart with axes, once the terminal had room for one

    def compose(self) -> ComposeResult:
        with Vertical(classes="trace-lines"):
            yield Static("no data yet", classes="trace-empty")
            for label, metric in self.traces:
                line = TraceLine(label, metric)
                self._lines[metric] = line
                yield line

    def add_chart(self, chart: PanelChart) -> None:
        self.chart = chart
        self.mount(chart)

    def update_from(self, series: Mapping[str, Sequence[float]]) -> None:
        """Refresh every line from the latest values per metric; mount lines for new group metrics."""
        if self.prefix:
            new = [n for n in series if n.startswith(self.prefix) and n not in self._lines]
            for name in new:
                line = TraceLine(name[len(self.prefix):], name)
                self._lines[name] = line
                self.query_one(".trace-lines").mount(line)
        any_data = False
        label_w = min(max((len(line.label) for line in self._lines.values()), default=4), 10)
        for name, line in self._lines.items():
            line.label_w = label_w
            vals = list(series.get(name, ()))
            if vals or line.values:
                line.set_values(vals)
            any_data = any_data or bool(vals)
        range_w = max((len(line.range_text()) for line in self._lines.values()), default=0)
        for line in self._lines.values():
            line.range_w = range_w  # the ranges line up in a column
        self.query_one(".trace-empty", Static).display = not any_data

    def clear(self) -> None:
        """Forget every value (another run is attached); per-group lines go away."""
        fixed = {metric for _, metric in self.traces}
        for name, line in list(self._lines.items()):
            if name in fixed:
                line.set_values([])
            else:
                line.remove()
                del self._lines[name]
        self.query_one(".trace-empty", Static).display = True

    def line(self, metric: str) -> TraceLine | None:
        return self._lines.get(metric)

    def shown_traces(self) -> list[Trace]:
        """(label, metric) of every line that has values, in the panel's order."""
        return [(line.label, name) for name, line in self._lines.items() if line.values]
