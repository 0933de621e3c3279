"""The one place the charts start a drawing on a textual-plotext widget, and set round, honest axes."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from cockpit.core.chart_data import nice_ticks
from cockpit.core.sparkline import compact, honest_range

# one colour per line, the same in a legend and its chart
PALETTE = [(0, 130, 200), (60, 180, 75), (230, 25, 75), (255, 225, 25), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]
# without colour (NO_COLOR) each line is drawn with its own character, which its legend entry shows
SHAPES = "•+x*o#=~"


def line_style(i: int, no_color: bool, shape: str = "") -> tuple[str, str]:
    """(plotext marker, legend symbol) of the i-th line: braille and a coloured square, or without colour
    a character of its own (`shape`, e.g. a run's letter, or one of SHAPES) in both."""
    if not no_color:
        return "braille", "■"
    mark = shape or SHAPES[i % len(SHAPES)]
    return mark, mark


def fresh(plot: PlotextPlot, title: str, log_y: bool, xlabel: str = "step"):
    """Clear the plot and set its title, x label and y scale; the plotext figure to draw on."""
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    plt.title(title)
    plt.xlabel(xlabel)
    plt.yscale("log" if log_y else "linear")
    return plt


def axes(plt, x_hi: float, lo: float, hi: float, log: bool, percent: bool, rows: int, whole_x: bool = True) -> None:
    """x from 0 to x_hi with round ticks (whole numbers where `whole_x`: steps); y on a log axis, or on
    the live view's honest scale (noise is not stretched to full height) with at most a tick every
    other row, so no two tick labels fall on one row."""
    x_hi = max(x_hi, 1e-9)
    plt.xlim(0, x_hi)
    xs = [t for t in nice_ticks(0, x_hi, 5) if t == int(t) or not whole_x]
    plt.xticks(xs, [compact(t) for t in xs])
    if log:
        plt.yscale("log")
        return
    lo, hi = honest_range(lo, hi)
    plt.ylim(lo, hi)
    ys = nice_ticks(lo, hi, max(2, min((rows - 3) // 2, 5)))
    plt.yticks(ys, [f"{y:g}%" if percent else compact(y) for y in ys])
