"""A comparison of runs (report.compare's data) drawn for the terminal (Rich), as HTML, or as JSON."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from cockpit import __version__
from cockpit.core.formats import STATE_STYLE
from engine.contracts import format_metric, metric_info

from . import svg
from .line_chart import line_chart

from ..compare import CURVE_METRICS, delta_text, fmt_result
from ..fmt import fmt_duration, fmt_pct, fmt_time, fmt_value
from .html_kit import page, section, table
from .term_kit import step_spark


# ------------------------------------------------------------------------------------- terminal


def terminal_compare(c: dict[str, Any], width: int = 120):

    ids = [r["run_id"] for r in c["runs"]]
    parts: list[Any] = []
    runs_t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, title="runs", title_justify="left")
    for col in ("", "run", "state", "preset", "device", "started", "duration"):
        runs_t.add_column(col)
    for i, r in enumerate(c["runs"]):
        runs_t.add_row(chr(65 + i) if i < 26 else str(i), r["run_id"], Text(r["state"], style=STATE_STYLE.get(r["state"], "")),
                       Path(r["preset"]).stem if r.get("preset") else "", r.get("device") or "",
                       fmt_time(r.get("started")), fmt_duration(r.get("duration_s")))
    parts.append(runs_t)

    parts.append(Rule(Text("Spec fields that differ", style="bold"), align="left", style="grey50"))
    if not c["diff"]:
        parts.append(Text("  the specs are identical", style="italic grey50"))
    else:
        t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        t.add_column("field", style="cyan")
        for i, rid in enumerate(ids):
            t.add_column(f"{chr(65 + i)} {rid}" if i < 26 else rid)
        for d in c["diff"]:
            t.add_row(d["key"], *[fmt_value(v) for v in d["values"]])
        parts.append(t)
    for e in c.get("errors") or []:
        parts.append(Text(e, style="bold red"))

    parts.append(Rule(Text("Results side by side", style="bold"), align="left", style="grey50"))
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    t.add_column("result")
    for i, rid in enumerate(ids):
        t.add_column(chr(65 + i) if i < 26 else rid, justify="right")
    for row in c["results"]:
        cells = []
        base = row["values"][0]
        for i, v in enumerate(row["values"]):
            txt = fmt_result(row["key"], v)
            d = delta_text(row["key"], v, base) if i else ""
            cell = Text(txt, style="bold green" if row["best_index"] == i else "")
            if d:
                cell.append(f" ({d})", style="grey50")
            cells.append(cell)
        t.add_row(row["label"], *cells)
    parts.append(t if c["results"] else Text("  no results recorded", style="italic grey50"))

    parts.append(Rule(Text("Curves (by epoch)", style="bold"), align="left", style="grey50"))
    ct = Table(box=None, pad_edge=False, show_header=False, padding=(0, 1))
    ct.add_column(style="bold", no_wrap=True)
    ct.add_column(no_wrap=True)
    ct.add_column(no_wrap=True, style="cyan")
    ct.add_column(justify="right", no_wrap=True)
    spark_w = max(width - 40, 16)
    styles = ["blue", "dark_orange", "green", "magenta", "red", "cyan"]
    for name, label, kind in CURVE_METRICS:
        runs = c["curves"].get(name)
        if not runs:
            continue
        x1 = max(max(r["x"]) for r in runs if r["x"])
        log = metric_info(name).log
        vals = [v for r in runs for v in r["y"] if v is not None and math.isfinite(v) and (v > 0 or not log)]
        vals = [math.log10(v) for v in vals] if log else vals
        scale = (min(vals), max(vals)) if vals else None
        for k, r in enumerate(runs):
            i = ids.index(r["run_id"])
            last = next((v for v in reversed(r["y"]) if v is not None), None)
            ct.add_row(label if k == 0 else "", Text(chr(65 + i) if i < 26 else str(i), style=styles[i % len(styles)]),
                       Text(step_spark(r["x"], r["y"], x1, spark_w, log=log, scale=scale), style=styles[i % len(styles)]),
                       format_metric(name, last))
    parts.append(ct)
    return Group(*parts)


# ----------------------------------------------------------------------------------------- HTML


def render_compare_html(c: dict[str, Any]) -> str:

    ids = [r["run_id"] for r in c["runs"]]
    letters = [chr(65 + i) if i < 26 else str(i) for i in range(len(ids))]
    colors = [svg.PALETTE[i % len(svg.PALETTE)] for i in range(len(ids))]

    def swatch(i: int) -> str:
        return f'<span class="sw" style="background:{colors[i]}"></span>{letters[i]}'

    runs_rows = [((swatch(i), ""), (f"<b>{escape(r['run_id'])}</b>", ""), r["state"],
                  Path(r["preset"]).stem if r.get("preset") else "", r.get("device") or "", fmt_time(r.get("started")),
                  fmt_duration(r.get("duration_s")), fmt_pct(r.get("best_test_acc")))
                 for i, r in enumerate(c["runs"])]
    head = ('<section class="card" id="compare-runs"><div class="top"><h1>Comparing '
            f"{len(ids)} runs</h1></div><div class=\"sub\">Training Cockpit run comparison · the first run is the "
            "baseline for deltas</div><h3>Runs</h3>"
            + table(["", "run", "state", "preset", "device", "started", "duration", "best test acc"], runs_rows, num=(7,))
            + "</section>")

    if c["diff"]:
        spec_inner = table(["field"] + [f"{letters[i]} · {rid}" for i, rid in enumerate(ids)],
                           [[(f"<code>{escape(d['key'])}</code>", "")] + [(f"<code>{escape(fmt_value(v))}</code>", "")
                                                                         for v in d["values"]] for d in c["diff"]])
    else:
        spec_inner = '<p class="note">the specs are identical</p>'
    spec_inner += "".join(f'<div class="error">{escape(e)}</div>' for e in c.get("errors") or [])
    spec = section("compare-spec", "Spec fields that differ", spec_inner)

    rows = []
    for row in c["results"]:
        base = row["values"][0]
        cells: list[Any] = [row["label"]]
        for i, v in enumerate(row["values"]):
            txt = escape(fmt_result(row["key"], v))
            d = delta_text(row["key"], v, base) if i else ""
            if row["best_index"] == i:
                txt = f"<b>{txt}</b>"
            if d:
                txt += f' <span style="color:#6b7280">({escape(d)})</span>'
            cells.append((txt, ""))
        rows.append(cells)
    results = section("compare-results", "Results side by side",
                      table(["result"] + [f"{letters[i]} · {rid}" for i, rid in enumerate(ids)], rows,
                            num=range(1, len(ids) + 1)) if rows else '<p class="note">no results recorded</p>')

    charts = []
    for name, title, kind in CURVE_METRICS:
        runs = c["curves"].get(name)
        if not runs:
            continue
        series = []
        for r in runs:
            i = ids.index(r["run_id"])
            series.append({"name": f"{letters[i]} {r['run_id']}", "x": r["x"], "y": r["y"], "color": colors[i]})
        unit = runs[0].get("unit", "epoch")
        charts.append(f"<figure>{line_chart(f'chart-compare-{name}', title, series, x_label=unit, y_fmt=kind, log_y=metric_info(name).log)}</figure>")
    curves = section("compare-curves", "Curves overlaid",
                     ('<div class="grid2">' + "".join(charts) + "</div>") if charts else '<p class="note">no curves recorded</p>')
    return page(f"compare: {' vs '.join(ids)}", "\n".join([head, spec, results, curves]),
                f"Training Cockpit {__version__} · run comparison")


def render_compare_json(c: dict[str, Any]) -> str:
    return json.dumps(c, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
