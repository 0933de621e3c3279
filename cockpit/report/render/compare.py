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
from cockpit.core.interventions import NONE, TITLE, intervention_rows
from cockpit.core.selection import BEST_MEANS
from engine.contracts import format_metric, metric_info

from . import svg
from .line_chart import line_chart

from ..compare import CURVE_METRICS, delta_text, fmt_result
from ..fmt import fmt_duration, fmt_pct, fmt_time, fmt_value
from .html_kit import page, section, table
from .term_kit import step_spark


def letter(i: int) -> str:
    """The short name of the i-th run in tables and legends: A, B, C..."""
    return chr(65 + i) if i < 26 else str(i)


def rule(title: str) -> Rule:
    return Rule(Text(title, style="bold"), align="left", style="grey50")


# ------------------------------------------------------------------------------------- terminal


INTERVENTIONS_TITLE, NO_INTERVENTION = TITLE, NONE  # the names the views and their tests use


def terminal_compare(c: dict[str, Any], width: int = 120) -> Group:
    """The comparison as one Rich renderable: runs, spec diff, interventions, results, curves."""
    return Group(compare_tables(c), rule("Curves (by epoch)"), _curves_table(c, width))


def compare_tables(c: dict[str, Any], compact: bool = False) -> Group:
    """The runs (A, B, C... with their full ids), the spec fields that differ, what was done to each run,
    the results side by side; compact: one line per run (the TUI, where a chart shares the screen)."""
    parts: list[Any] = [_runs_table(c, compact), rule("Spec fields that differ"), _spec_diff_table(c)]
    parts += [Text(e, style="bold red") for e in c.get("errors") or []]
    parts += [rule(INTERVENTIONS_TITLE), _interventions_lines(c) if compact else _interventions_table(c)]
    parts += [rule("Results side by side"), _results_table(c)]
    return Group(*parts)


def _runs_table(c: dict[str, Any], compact: bool = False) -> Group:
    """One entry per run, its letter and full id first: lines wrap on a narrow terminal, an id is never cut."""
    lines: list[Any] = [] if compact else [Text("runs", style="italic")]
    for i, r in enumerate(c["runs"]):
        head = Text(f" {letter(i)}  ", style="bold")
        head.append(r["run_id"], style="bold")
        head.append("  ")
        head.append(r["state"], style=STATE_STYLE.get(r["state"], ""))
        if r.get("preset"):
            head.append(f"  {Path(r['preset']).stem}")
        head.append(f"  {fmt_duration(r.get('duration_s'))}")
        detail = " · ".join(x for x in (r.get("device") or "", fmt_time(r.get("started"))) if x)
        lines += [head] if compact else [head, Text(f"    {detail}", style="grey50")]
    return Group(*lines)


def _spec_diff_table(c: dict[str, Any]) -> Table | Text:
    if not c["diff"]:
        return Text("  the specs are identical", style="italic grey50")
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    t.add_column("field", style="cyan")
    for i, r in enumerate(c["runs"]):  # the letters of the runs table above (an id here would be cut)
        t.add_column(letter(i) if i < 26 else r["run_id"], overflow="fold")
    for d in c["diff"]:
        t.add_row(d["key"], *[fmt_value(v) for v in d["values"]])
    return t


def _intervention_rows(c: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return intervention_rows([(letter(i), done) for i, done in enumerate(c.get("interventions") or [])])


def _interventions_lines(c: dict[str, Any]) -> Table:
    """One entry per run, its interventions in a row that wraps under itself, beside the run's letter (the
    TUI: the results stay in view)."""
    grid = Table.grid(padding=(0, 1), pad_edge=True)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1)
    for i, done in enumerate(c.get("interventions") or []):
        line = Text(NO_INTERVENTION, style="italic grey50") if not done else Text()
        for k, x in enumerate(done):
            line.append(" · " if k else "")
            line.append(f"step {x['step']:,} ")
            line.append(x["action"], style="cyan")
            line.append(f" {x['detail']}")
        grid.add_row(letter(i), line)
    return grid


def _interventions_table(c: dict[str, Any]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    t.add_column("run", style="bold")
    t.add_column("step", justify="right")
    t.add_column("epoch", justify="right")
    t.add_column("action", style="cyan")
    t.add_column("what", overflow="fold")
    for row in _intervention_rows(c):
        t.add_row(*row[:4], Text(row[4], style="italic grey50" if row[4] == NO_INTERVENTION else ""))
    return t


def _results_table(c: dict[str, Any]) -> Table | Text:
    if not c["results"]:
        return Text("  no results recorded", style="italic grey50")
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, caption=BEST_MEANS, caption_justify="left",
              caption_style="grey50")
    t.add_column("result")
    for i, r in enumerate(c["runs"]):
        t.add_column(letter(i) if i < 26 else r["run_id"], justify="right")
    for row in c["results"]:
        cells = []
        for i, v in enumerate(row["values"]):
            cell = Text(fmt_result(row["key"], v), style="bold green" if row["best_index"] == i else "")
            d = delta_text(row["key"], v, row["values"][0]) if i else ""
            if d:
                cell.append(f" ({d})", style="grey50")
            cells.append(cell)
        t.add_row(row["label"], *cells)
    return t


def _curves_table(c: dict[str, Any], width: int) -> Table:
    """One sparkline per run and curve, on a scale shared by the runs (so their heights compare)."""
    ids = [r["run_id"] for r in c["runs"]]
    t = Table(box=None, pad_edge=False, show_header=False, padding=(0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True, style="cyan")
    t.add_column(justify="right", no_wrap=True)
    spark_w = max(width - 40, 16)
    styles = ["blue", "dark_orange", "green", "magenta", "red", "cyan"]
    for name, label, _ in CURVE_METRICS:
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
            style = styles[i % len(styles)]
            last = next((v for v in reversed(r["y"]) if v is not None), None)
            t.add_row(label if k == 0 else "", Text(letter(i), style=style),
                      Text(step_spark(r["x"], r["y"], x1, spark_w, log=log, scale=scale), style=style),
                      format_metric(name, last))
    return t


# ----------------------------------------------------------------------------------------- HTML


def render_compare_html(c: dict[str, Any]) -> str:
    """The comparison as one self-contained HTML page."""
    ids = [r["run_id"] for r in c["runs"]]
    colors = [svg.PALETTE[i % len(svg.PALETTE)] for i in range(len(ids))]
    parts = [_runs_html(c, colors), _spec_html(c), _interventions_html(c), _results_html(c), _curves_html(c, colors)]
    return page(f"compare: {' vs '.join(ids)}", "\n".join(parts), f"Training Cockpit {__version__} · run comparison")


def _run_headers(c: dict[str, Any]) -> list[str]:
    return [f"{letter(i)} · {r['run_id']}" for i, r in enumerate(c["runs"])]


def _runs_html(c: dict[str, Any], colors: list[str]) -> str:
    rows = [((f'<span class="sw" style="background:{colors[i]}"></span>{letter(i)}', ""),
             (f"<b>{escape(r['run_id'])}</b>", ""), r["state"], Path(r["preset"]).stem if r.get("preset") else "",
             r.get("device") or "", fmt_time(r.get("started")), fmt_duration(r.get("duration_s")),
             fmt_pct(r.get("best_test_acc")))
            for i, r in enumerate(c["runs"])]
    return ('<section class="card" id="compare-runs"><div class="top"><h1>Comparing '
            f"{len(rows)} runs</h1></div><div class=\"sub\">Training Cockpit run comparison · the first run is the "
            f"baseline for deltas; {escape(BEST_MEANS)}</div><h3>Runs</h3>"
            + table(["", "run", "state", "preset", "device", "started", "duration", "best.pt test acc"], rows, num=(7,))
            + "</section>")


def _spec_html(c: dict[str, Any]) -> str:
    if c["diff"]:
        inner = table(["field"] + _run_headers(c),
                      [[(f"<code>{escape(d['key'])}</code>", "")] + [(f"<code>{escape(fmt_value(v))}</code>", "")
                                                                    for v in d["values"]] for d in c["diff"]])
    else:
        inner = '<p class="note">the specs are identical</p>'
    inner += "".join(f'<div class="error">{escape(e)}</div>' for e in c.get("errors") or [])
    return section("compare-spec", "Spec fields that differ", inner)


def _interventions_html(c: dict[str, Any]) -> str:
    rows = [[run, step, epoch, (f"<code>{escape(action)}</code>", "") if action else "", what]
            for run, step, epoch, action, what in _intervention_rows(c)]
    return section("compare-interventions", INTERVENTIONS_TITLE,
                   table(["run", "step", "epoch", "action", "what"], rows, num=(1, 2)))


def _results_html(c: dict[str, Any]) -> str:
    rows = []
    for row in c["results"]:
        cells: list[Any] = [row["label"]]
        for i, v in enumerate(row["values"]):
            txt = escape(fmt_result(row["key"], v))
            d = delta_text(row["key"], v, row["values"][0]) if i else ""
            if row["best_index"] == i:
                txt = f"<b>{txt}</b>"
            if d:
                txt += f' <span style="color:#6b7280">({escape(d)})</span>'
            cells.append((txt, ""))
        rows.append(cells)
    return section("compare-results", "Results side by side",
                   table(["result"] + _run_headers(c), rows, num=range(1, len(c["runs"]) + 1)) if rows
                   else '<p class="note">no results recorded</p>')


def _curves_html(c: dict[str, Any], colors: list[str]) -> str:
    ids = [r["run_id"] for r in c["runs"]]
    charts = []
    for name, title, kind in CURVE_METRICS:
        runs = c["curves"].get(name)
        if not runs:
            continue
        series = [{"name": f"{letter(i)} {r['run_id']}", "x": r["x"], "y": r["y"], "color": colors[i]}
                  for r in runs for i in [ids.index(r["run_id"])]]
        chart = line_chart(f"chart-compare-{name}", title, series, x_label=runs[0].get("unit", "epoch"), y_fmt=kind,
                           log_y=metric_info(name).log)
        charts.append(f"<figure>{chart}</figure>")
    return section("compare-curves", "Curves overlaid",
                   ('<div class="grid2">' + "".join(charts) + "</div>") if charts
                   else '<p class="note">no curves recorded</p>')


def render_compare_json(c: dict[str, Any]) -> str:
    return json.dumps(c, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
