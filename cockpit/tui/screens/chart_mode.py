"""The dashboard's two layouts: compact panels of sparklines (80x24 and up) or, where the terminal
has room, the same panels as charts with axes over the whole run, sized so that the panels (and,
where they fit, the events and finishing passes) fill the screen. Mixed into DashboardScreen."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cockpit.core.history import History
from engine.contracts import metric_info

from ..widgets.system_panel import SystemPanel, charted
from ..widgets.trace_panel import TracePanel

if TYPE_CHECKING:
    from ..widgets.panel_chart import ChartLine

CHARTS_AT = (120, 32)  # columns and rows from which the panels are charts
FOUR_AT = 160  # columns from which four charts share a row (three below)
MIN_ROWS, MAX_ROWS = 5, 30  # rows of a chart's plot
FRAME = 3  # what a panel adds to its plot: the border (2 rows) and the legend line
CHART_GAP_S = 2.0  # charts are redrawn at most this often: plotext takes ~10 ms a chart, and a redraw is ~20 KB to the terminal
# panels whose chart draws only some of their lines: the others have other units (no shared axis)
CHART_ONLY = {"panel-speed": ("images_per_s",)}


def wants_charts(width: int, height: int) -> bool:
    return width >= CHARTS_AT[0] and height >= CHARTS_AT[1]


def plot_rows(body_rows: int, panels: int, columns: int, bottom_rows: int) -> int:
    """Rows for each chart's plot: the panels and the events below them in view where that leaves a
    chart MIN_ROWS + 2 rows, else the panels alone fill the view (the fold line names the rest)."""
    grid_rows = -(-panels // columns)
    fit = (body_rows - bottom_rows) // grid_rows - FRAME
    if fit < MIN_ROWS + 2:
        fit = body_rows // grid_rows - FRAME
    return max(MIN_ROWS, min(fit, MAX_ROWS))


class ChartMode:
    """The layout switch and the chart drawing of the dashboard (which owns `history`)."""

    history: History
    charts_on = False
    _chart_drawn_at = 0.0
    _chart_timer = None

    def _chart_panels(self) -> list:
        return [*self.query(TracePanel), self.query_one(SystemPanel)]

    def fit_layout(self) -> None:
        """Compact panels or charts, for the terminal's size now."""
        width, height = self.size
        on = wants_charts(width, height)
        if on and any(p.chart is None for p in self._chart_panels()):
            from ..widgets.panel_chart import PanelChart  # plotext loads on the first chart

            for panel in self._chart_panels():
                if panel.chart is None:
                    panel.add_chart(PanelChart())
        for panel in self._chart_panels():
            panel.border_subtitle = "by step" if on else ""
        self.set_class(on, "-charts")
        self.set_class(on and width >= FOUR_AT, "-four")
        self.charts_on = on
        if on:
            self.call_after_refresh(self._size_charts)

    def _size_charts(self) -> None:
        if not self.charts_on or not self.is_mounted:
            return
        width = self.size.width
        body, bottom = self.query_one("#dash-body"), self.query_one("#dash-bottom")
        panels = self._chart_panels()
        rows = plot_rows(body.size.height, len(panels), 4 if width >= FOUR_AT else 3, bottom.outer_size.height)
        for panel in panels:
            panel.chart.set_rows(rows)
        self.call_after_refresh(self.draw_charts, True)  # once laid out: a plot draws to its width

    def draw_charts(self, now: bool = False) -> None:
        """Redraw every chart from the history; at most every CHART_GAP_S (or the refresh rate) unless `now`."""
        if not self.charts_on or not self.is_mounted:
            return
        wait = self._chart_drawn_at + max(CHART_GAP_S, self.app.refresh_s) - time.monotonic()
        if wait > 0 and not now:
            if self._chart_timer is None:
                self._chart_timer = self.set_timer(wait, self._chart_due)
            return
        self._chart_drawn_at = time.monotonic()
        last = self.history.last_step
        for panel in self._chart_panels():
            lines = self._chart_lines(panel)
            log = bool(lines) and all(metric_info(metric).log for _, metric, _ in lines)
            panel.chart.draw(lines, last, log)

    def _chart_due(self) -> None:
        self._chart_timer = None
        self.draw_charts(True)

    def _chart_lines(self, panel) -> list[ChartLine]:
        if isinstance(panel, SystemPanel):
            traces = charted(self.history.names())
        else:
            only = CHART_ONLY.get(panel.id or "")
            traces = [(label, m) for label, m in panel.shown_traces() if only is None or m in only]
        return [(label, m, self.history.points(m)) for label, m in traces if self.history.points(m)]
