"""The one place the full-screen charts start a drawing on a textual-plotext widget."""

from __future__ import annotations

from textual_plotext import PlotextPlot


def fresh(plot: PlotextPlot, title: str, log_y: bool, xlabel: str = "step"):
    """Clear the plot and set its title, x label and y scale; the plotext figure to draw on."""
    plt = plot.plt
    plt.clear_data()
    plt.clear_figure()
    plt.title(title)
    plt.xlabel(xlabel)
    plt.yscale("log" if log_y else "linear")
    return plt
