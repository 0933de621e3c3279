"""The SVG report: the run's curves as one vector figure, to put in a slide or a paper.

The HTML report's own line charts (loss, accuracy, learning rate, gradient norm, saturation,
throughput: line_chart.py, with axes, legends and the numbered event markers) laid out two to a
row under a header that names the run, its state and its one "best" figure (best.pt's test
accuracy, chosen on validation), with the markers' numbers explained below. Tables, the spec and the
other sections are in the HTML and Markdown reports.
"""

from __future__ import annotations

from typing import Any

from ..fmt import best_headline, fmt_duration, marker_events, metric_label, progress_text
from ..schema import Summary
from . import svg
from .html import step_chart

CHART_W, CHART_H = 560, 290
MARGIN, GAP, HEAD_H, NOTE_LINE = 20, 16, 86, 16
COLUMNS = 2


def figure_charts(s: Summary, markers: list[dict[str, Any]]) -> list[str]:
    """The curves the run has, as the HTML report draws them (a chart with no data is left out)."""
    lr_names = ["lr"] + sorted(n for n in s["series"] if n.startswith("lr/"))
    specs = [
        ("fig-loss", "Loss", ["train_loss", "test_loss", "val_loss", "swa_test_loss"], {"log_y": True}),
        ("fig-accuracy", "Accuracy", ["train_acc", "test_acc", "val_acc", "swa_test_acc"], {"y_fmt": "pct"}),
        ("fig-lr", "Learning rate", lr_names, {}),
        ("fig-grad-norm", "Gradient norm", ["grad_norm", "grad_norm_max"],
         {"log_y": True, "labels": {"grad_norm": "grad norm (mean)", "grad_norm_max": "grad norm (max)"}}),
        ("fig-saturation", "Activation saturation and dead units", ["act/saturation", "act/dead"],
         {"y_fmt": "pct", "labels": {"act/saturation": "saturation", "act/dead": "dead units"}}),
        ("fig-throughput", "Throughput (images / s)", ["images_per_s"], {"labels": {"images_per_s": "images / s"}}),
    ]
    charts = []
    for cid, title, names, opts in specs:
        if any(s["series"].get(n) for n in names):
            labels = {n: metric_label(n) for n in names} | opts.pop("labels", {})  # a slide reads labels, not keys
            charts.append(step_chart(s, cid, title, names, markers=markers, width=CHART_W, height=CHART_H,
                                     labels=labels, **opts))
    return charts


def _header(s: Summary) -> list[str]:
    run = s["run"]
    line2 = " · ".join(x for x in (run.get("preset") or "", run.get("device") or "", progress_text(run),
                                   fmt_duration(run.get("duration_s")) if run.get("duration_s") else "") if x)
    best = best_headline(s)
    line3 = f"best test accuracy {best[0]} ({best[1]})" if best else "no evaluation yet"
    return [svg._text(MARGIN, 30, f"{run['run_id']} · {run['state']}", size=18, fill=svg.INK, weight="600"),
            svg._text(MARGIN, 52, line2, size=12), svg._text(MARGIN, 72, line3, size=13, fill=svg.INK)]


def _marker_notes(markers: list[dict[str, Any]], width: float) -> list[str]:
    """What each numbered marker on the charts is, as many to a line as fit."""
    lines: list[str] = []
    for m in markers:
        item = f"{m['n']} {m['kind']} at step {m['step']:,}"
        if lines and svg.text_width(lines[-1] + " · " + item, 11) < width - 2 * MARGIN:
            lines[-1] += " · " + item
        else:
            lines.append(item)
    return lines


def render_svg(summary: Summary) -> str:
    """The whole SVG document (standalone, well-formed XML, no scripts, fonts or network)."""
    s = summary
    markers = marker_events(s)
    charts = figure_charts(s, markers) if s["series"] else []
    rows = -(-len(charts) // COLUMNS)
    width = 2 * MARGIN + COLUMNS * CHART_W + (COLUMNS - 1) * GAP
    notes = _marker_notes(markers, width) if charts else []
    body_h = rows * (CHART_H + GAP) - GAP if rows else 40
    height = HEAD_H + body_h + MARGIN + NOTE_LINE * len(notes) + (8 if notes else 0)
    title = f"cockpit run {s['run']['run_id']}"
    out = [svg.svg_open("run-figure", title, width, height, css_class="figure").replace(
               "<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1),
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>', *_header(s)]
    if not charts:
        out.append(svg._text(MARGIN, HEAD_H + 20, s["notes"].get("metrics", "no metrics recorded yet"), size=12))
    for i, chart in enumerate(charts):
        x = MARGIN + (i % COLUMNS) * (CHART_W + GAP)
        y = HEAD_H + (i // COLUMNS) * (CHART_H + GAP)
        out.append(chart.replace("<svg ", f'<svg x="{x}" y="{y}" ', 1))
    y = HEAD_H + body_h + MARGIN
    for i, line in enumerate(notes):
        out.append(svg._text(MARGIN, y + i * NOTE_LINE, ("markers: " if i == 0 else "") + line, size=11))
    return "".join(out) + "</svg>\n"

