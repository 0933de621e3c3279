"""Several runs compared (what `cockpit compare` prints, in the TUI): the runs with their full ids,
the spec fields that differ, the results side by side, and one metric's curves overlaid in a chart
(m picks the metric). The data is report.compare's, read from the stores alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual_plotext import PlotextPlot

from engine.contracts import metric_info
from engine.store import Run

from ..plotting import fresh
from .base import PushedView


class CompareScreen(PushedView):
    """The comparison of the runs marked in the runs list (the first is the baseline)."""

    BINDINGS = [
        Binding("escape,q", "close", "Back", tooltip="Back to the runs list"),
        Binding("m", "metric(1)", "Next curve", tooltip="Overlay the next metric's curves"),
        Binding("M", "metric(-1)", "Prev curve", tooltip="Overlay the previous metric's curves"),
        Binding("y", "log", "Log/lin", tooltip="Toggle a log or linear y axis for the curves"),
        Binding("g", "toggle_chart", "Chart", tooltip="Hide the chart (the tables get the screen) or show it"),
        Binding("tab", "focus_next", "Tables/chart", show=False),
    ]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(classes="compare-screen")
        self.paths = [Path(p) for p in paths]
        self.data: dict[str, Any] | None = None
        self.tables = None  # the Rich renderable of the tables, once loaded
        self.metric_index = 0
        self.log_y = False

    def body(self) -> ComposeResult:
        with VerticalScroll(id="cmp-body"):
            yield Static(f"comparing {len(self.paths)} runs…", id="cmp-tables")
        yield PlotextPlot(id="cmp-chart")

    def on_mount(self) -> None:
        self.sub_title = f"compare · {len(self.paths)} runs"
        self.query_one("#cmp-body").focus()
        paths = self.paths

        def load() -> None:
            from cockpit.report.compare import compare_runs

            runs = []
            try:
                runs = [Run(p, readonly=True) for p in paths]
                data = compare_runs(runs)
            except Exception as exc:
                self.app.call_from_thread(self.notify, f"cannot compare: {type(exc).__name__}: {exc}",
                                          severity="error", timeout=10)
                return
            finally:
                for r in runs:
                    r.close()
            self.app.call_from_thread(self._loaded, data)

        self.run_worker(load, thread=True, group="compare", exit_on_error=False)

    @property
    def curve_names(self) -> list[str]:
        return list((self.data or {}).get("curves", {}))

    def _loaded(self, data: dict[str, Any]) -> None:
        from cockpit.report.render.compare import compare_tables

        self.data = data
        self.tables = compare_tables(data, compact=True)
        self.query_one("#cmp-tables", Static).update(self.tables)
        names = self.curve_names
        if names:
            self.log_y = metric_info(names[0]).log
        self.draw()

    def draw(self) -> None:
        from cockpit.report.render.compare import letter

        plot = self.query_one(PlotextPlot)
        names = self.curve_names
        if not names or self.data is None:
            fresh(plot, "no curves recorded", False)
            plot.refresh()
            return
        name = names[self.metric_index % len(names)]
        ids = [r["run_id"] for r in self.data["runs"]]
        title = f"{metric_info(name).label} ({self.metric_index % len(names) + 1}/{len(names)}, m: next)"
        lines = []
        for curve in self.data["curves"][name]:
            pts = [(x, y) for x, y in zip(curve["x"], curve["y"]) if y is not None and (y > 0 or not self.log_y)]
            if pts:
                lines.append((letter(ids.index(curve["run_id"])), pts))
        plt = fresh(plot, title, self.log_y and bool(lines), self.data["curves"][name][0].get("unit", "step"))
        for label, pts in lines:
            plt.plot([x for x, _ in pts], [y for _, y in pts], marker="braille", label=label)
        plot.refresh()

    def action_metric(self, step: int) -> None:
        names = self.curve_names
        if not names:
            self.notify("no curves to overlay: the runs recorded no metrics", severity="warning")
            return
        self.metric_index = (self.metric_index + step) % len(names)
        self.log_y = metric_info(names[self.metric_index]).log
        self.draw()

    def action_toggle_chart(self) -> None:
        chart = self.query_one(PlotextPlot)
        chart.display = not chart.display

    def action_log(self) -> None:
        self.log_y = not self.log_y
        self.draw()
