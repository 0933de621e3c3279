"""A dashboard panel's lines as a chart with axes (textual-plotext), for terminals with room for it:
a legend line (each line's colour, label and latest value) over the values by step. Its module is
imported only when a dashboard first has room for charts, so an 80x24 start never loads plotext."""

from __future__ import annotations

from typing import Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.core.history import extremes
from engine.contracts import format_metric, metric_info

from ..plotting import PALETTE, axes, line_style

ChartLine = tuple[str, str, Sequence[tuple[int, float]]]  # label, metric, (step, value) points


class PanelChart(Vertical):
    """`draw(lines, last_step, log)`: the lines over steps 0..last_step; percentages drawn as 0-100."""

    def __init__(self) -> None:
        super().__init__(classes="panel-chart")
        self.legend = Static("no data yet", classes="chart-legend")
        self.plot = PlotextPlot(classes="chart-plot")
        self.drawn: list[tuple[str, list[int], list[float]]] = []  # (label, steps, values as plotted)
        self.drawn_width = 0  # the plot's width when drawn (points are thinned to it)
        self._args: tuple = ((), 0, False)

    def compose(self) -> ComposeResult:
        yield self.legend
        yield self.plot

    def set_rows(self, rows: int) -> None:
        self.plot.styles.height = rows

    def on_resize(self) -> None:
        if self.plot.size.width != self.drawn_width:
            self.draw(*self._args)

    def draw(self, lines: Sequence[ChartLine], last_step: int, log: bool = False) -> None:
        self._args = (lines, last_step, log)
        plot = self.plot
        self.drawn_width = plot.size.width
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        columns = max(plot.size.width - 8, 10)  # the y axis' labels take about 8 columns
        legend = Text(no_wrap=True, overflow="ellipsis")
        lows, highs, percent = [], [], False
        self.drawn = []
        for i, (label, metric, points) in enumerate(lines):
            info = metric_info(metric)
            pct = info.fmt.endswith("%")
            shown = [(s, v * 100 if pct else v) for s, v in points if v > 0 or not log]
            if not points:
                continue
            color = PALETTE[i % len(PALETTE)]
            marker, symbol = line_style(i, self.app.no_color)
            legend.append(f"{symbol} ", style=Style(color=Color.from_rgb(*color)))
            legend.append(f"{label} ", style="bold")
            legend.append(f"{format_metric(info, points[-1][1])}  ")
            if not shown:
                continue
            shown = extremes(shown, columns)  # 2 points a column: what braille can draw, spikes kept
            xs, ys = [s for s, _ in shown], [v for _, v in shown]
            plt.plot(xs, ys, marker=marker, color=color)
            self.drawn.append((label, xs, ys))
            lows.append(min(v for _, v in shown))
            highs.append(max(v for _, v in shown))
            percent = percent or pct
        if not lows:
            legend = Text("no data yet", style="dim")
        else:
            axes(plt, last_step, min(lows), max(highs), log, percent, plot.size.height)
        self.legend.update(legend)
        plot.refresh()
