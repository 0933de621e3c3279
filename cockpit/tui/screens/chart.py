"""A panel's metrics as a full-screen line chart (textual-plotext): braille or block resolution,
zoom and pan over steps, a log or linear y axis, and markers where the LR was changed, the run was
paused or SWA started. Follows a live run."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.core.chart_data import ChartData, Window, load_chart
from engine.contracts import metric_info
from engine.store import ACTIVE_STATES

from ..plotting import fresh
from ..widgets.trace_panel import TracePanel
from .base import PushedView

RELOAD_S = 2.0
MARKERS = ("braille", "hd")  # 2x4 dots per cell, or 2x2 blocks (any font)


def panel_lines(panel, last: Mapping[str, float]) -> tuple[str, list[tuple[str, str]]]:
    """(title, (label, metric) lines) of a dashboard panel: its lines with values, or every system metric."""
    if isinstance(panel, TracePanel):
        return str(panel.border_title).split(" · ")[0], panel.shown_traces() or list(panel.traces)
    return "System", [(n[len("system/"):], n) for n in last if n.startswith("system/")]


class ChartScreen(PushedView):
    """One chart: every line of a dashboard panel over steps."""

    BINDINGS = [
        Binding("escape,q,enter", "close", "Back", tooltip="Back to the dashboard"),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", tooltip="Zoom in on the steps in the middle of the view"),
        Binding("minus", "zoom(2.0)", "Zoom out", tooltip="Zoom out (up to the whole run)"),
        Binding("left,h", "pan(-0.25)", "◀ Pan", tooltip="Pan to earlier steps"),
        Binding("right,l", "pan(0.25)", "Pan ▶", tooltip="Pan to later steps"),
        Binding("0", "reset", "All steps", tooltip="The whole run again"),
        Binding("y", "log", "Log/lin", tooltip="Toggle a log or linear y axis"),
        Binding("b", "marker", "Dots/blocks", tooltip="Toggle braille dots or blocks"),
        Binding("m", "events", "Markers", tooltip="Show or hide the event markers (set-lr, pause, SWA)"),
    ]

    def __init__(self, path: Path, title: str, lines: list[tuple[str, str]]) -> None:
        super().__init__(classes="chart-screen")
        self.path = Path(path)
        self.chart_title = title
        self.lines = lines  # (label, metric)
        self.data = ChartData()
        self.window = Window()
        self.log_y = all(metric_info(m).log for _, m in lines) if lines else False
        self.marker = MARKERS[0]
        self.show_events = True
        self._loading = False

    def body(self) -> ComposeResult:
        yield Static("", id="chart-head")
        yield PlotextPlot(id="chart")

    def on_mount(self) -> None:
        self.sub_title = f"chart · {self.chart_title}"
        self.reload()
        self.set_interval(max(RELOAD_S, getattr(self.app, "refresh_s", 0)), self._follow)

    def _follow(self) -> None:
        if self.data.state in ACTIVE_STATES:
            self.reload()

    def reload(self) -> None:
        if self._loading:
            return
        self._loading = True
        metrics = [m for _, m in self.lines]

        def load() -> None:
            try:
                data = load_chart(self.path, metrics)
            except Exception as exc:
                self.app.call_from_thread(self.notify, f"cannot read the run: {exc}", severity="error")
                data = None
            self.app.call_from_thread(self._loaded, data)

        self.run_worker(load, thread=True, group="chart", exit_on_error=False)

    def _loaded(self, data: ChartData | None) -> None:
        self._loading = False
        if data is not None:
            self.data = data
            self.window.fit(data.last_step)
            self.draw()

    def draw(self) -> None:
        plot = self.query_one(PlotextPlot)
        lines = [(label, *self.window.clip(self.data.series.get(metric, []), self.log_y)) for label, metric in self.lines]
        lines = [(label, xs, ys) for label, xs, ys in lines if xs]
        plt = fresh(plot, self.chart_title, self.log_y and bool(lines))  # plotext cannot log-scale nothing
        for label, xs, ys in lines:
            plt.plot(xs, ys, marker=self.marker, label=label)
        drawn = len(lines)
        if self.show_events:
            for step, label in self.data.markers:
                if self.window.lo <= step <= self.window.hi:
                    plt.vline(step)
        if drawn:
            plt.xlim(self.window.lo, self.window.hi)
        self._head(drawn)
        plot.refresh()

    def _head(self, drawn: int) -> None:
        w = self.window
        view = f"steps {w.lo:,.0f}–{w.hi:,.0f}" + (" (zoomed: 0 shows all)" if w.zoomed else " (all)")
        marks = [f"{label}@{step}" for step, label in self.data.markers if w.lo <= step <= w.hi]
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{view} · y {'log' if self.log_y else 'linear'} · {self.marker}")
        if self.show_events and marks:
            text.append(" · │ " + ", ".join(marks[:6]) + (" …" if len(marks) > 6 else ""))
        if not drawn:
            text.append(" · no data in view", style="bold")
        self.query_one("#chart-head", Static).update(text)

    def action_zoom(self, factor: float) -> None:
        self.window.zoom(factor, self.data.last_step)
        self.draw()

    def action_pan(self, fraction: float) -> None:
        self.window.pan(fraction, self.data.last_step)
        self.draw()

    def action_reset(self) -> None:
        self.window.reset(self.data.last_step)
        self.draw()

    def action_log(self) -> None:
        self.log_y = not self.log_y
        self.draw()

    def action_marker(self) -> None:
        self.marker = MARKERS[(MARKERS.index(self.marker) + 1) % len(MARKERS)]
        self.draw()

    def action_events(self) -> None:
        self.show_events = not self.show_events
        self.draw()
