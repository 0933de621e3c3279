"""`cockpit compare RUN_A RUN_B ...`: the spec fields that differ, results side by side, curves overlaid.

Made from the run store alone (each run's report summary), as a terminal table, HTML or JSON.
The first run is the baseline: deltas are against it.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any, Optional

import typer

from engine.spec import flatten
from engine.store import RUNS_ENV, Run, StoreError, resolve_run

from . import __version__
from .report.export import write_atomic
from .report.fmt import fmt_delta, fmt_delta_pct, fmt_duration, fmt_metric, fmt_pct, fmt_time, fmt_value
from .report.summary import SCHEMA_VERSION, clean, summarize

# (key, label, higher is better) rows of the results table; key is "metric:<name>", "best:<name>",
# "pass:<name>" (a finishing pass's accuracy) or "run:<field>"
RESULT_ROWS = [
    ("best:test_acc", "best test accuracy", True), ("metric:test_acc", "final test accuracy", True),
    ("metric:test_loss", "final test loss", False), ("best:val_acc", "best val accuracy", True),
    ("metric:train_acc", "final train accuracy", True), ("metric:train_loss", "final train loss", False),
    ("pass:swa", "SWA accuracy", True), ("pass:calibrated", "calibrated accuracy", True),
    ("ece:calibrated", "ECE after calibration", False), ("pass:tta", "TTA accuracy", True),
    ("pass:ensemble", "ensemble accuracy", True),
    ("metric:images_per_s", "images / s (last)", True), ("run:duration_s", "duration", False),
    ("run:step", "steps done", True),
]
CURVE_METRICS = [("test_acc", "Test accuracy", "pct"), ("train_loss", "Train loss", "num"),
                 ("test_loss", "Test loss", "num"), ("train_acc", "Train accuracy", "pct"),
                 ("val_acc", "Val accuracy", "pct"), ("lr", "Learning rate", "num"),
                 ("grad_norm", "Gradient norm", "num"), ("images_per_s", "Throughput (images / s)", "num")]


def _value(s: dict[str, Any], key: str) -> float | None:
    kind, _, name = key.partition(":")
    if kind == "metric":
        return s["metrics"]["final"].get(name)
    if kind == "best":
        b = s["metrics"]["best"].get(name)
        return b["value"] if b else None
    if kind in ("pass", "ece"):
        row = next((r for r in s["finishing"] if r["pass"] == name), None)
        return (row["acc"] if kind == "pass" else row["ece"]) if row else None
    if kind == "run":
        return s["run"].get(name)
    return None


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "–"
    kind, _, name = key.partition(":")
    if kind in ("pass", "ece"):
        return fmt_pct(v)
    if key == "run:duration_s":
        return fmt_duration(v)
    if key == "run:step":
        return f"{int(v):,}"
    return fmt_metric(name, v)


def _delta(key: str, v: Any, base: Any) -> str:
    if v is None or base is None or key in ("run:duration_s", "run:step"):
        return ""
    name = key.partition(":")[2]
    if key.startswith(("pass:", "ece:")) or name.endswith("acc"):
        return fmt_delta_pct(v - base)
    if name == "images_per_s":
        return f"{(v / base - 1) * 100:+.1f}%" if base else ""
    return fmt_delta(v - base)


def compare_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison as plain data (what every compare format renders)."""
    flats = [flatten(s["spec"]) if s.get("spec") else {} for s in summaries]
    keys = sorted(set().union(*flats)) if flats else []
    diff = [{"key": k, "values": [f.get(k) for f in flats]} for k in keys
            if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    results = []
    for key, label, higher in RESULT_ROWS:
        vals = [_value(s, key) for s in summaries]
        if all(v is None for v in vals):
            continue
        present = [(i, v) for i, v in enumerate(vals) if v is not None]
        best = (max if higher else min)(present, key=lambda p: p[1])[0] if len(present) > 1 else None
        if key in ("run:duration_s", "run:step"):
            best = None
        results.append({"key": key, "label": label, "values": vals, "best_index": best, "higher_is_better": higher})
    curves: dict[str, list[dict[str, Any]]] = {}
    for name, _, _ in CURVE_METRICS:
        per_run = []
        for s in summaries:
            sr = s["series"].get(name)
            spe = s["run"].get("steps_per_epoch") or 0
            if sr and sr["step"]:
                x = [st / spe for st in sr["step"]] if spe else list(sr["step"])
                per_run.append({"run_id": s["run"]["run_id"], "x": x, "y": sr["value"], "unit": "epoch" if spe else "step"})
        if per_run:
            curves[name] = per_run
    errors = [f"{s['run']['run_id']}: spec.toml does not validate ({s['spec_error']})" for s in summaries if s.get("spec_error")]
    return clean({
        "schema_version": SCHEMA_VERSION,
        "runs": [s["run"] | {"best_test_acc": _value(s, "best:test_acc")} for s in summaries],
        "diff": diff,
        "results": results,
        "curves": curves,
        "errors": errors,
    })


def compare_runs(runs: list[Run]) -> dict[str, Any]:
    return compare_summaries([summarize(r) for r in runs])


# ------------------------------------------------------------------------------------- terminal


def terminal_compare(c: dict[str, Any], width: int = 120):
    from rich import box
    from rich.console import Group
    from rich.rule import Rule
    from rich.table import Table
    from rich.text import Text

    from .report.term import STATE_STYLE, step_spark

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
            txt = _fmt(row["key"], v)
            d = _delta(row["key"], v, base) if i else ""
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
        log = name.endswith("loss") or name == "grad_norm"
        vals = [v for r in runs for v in r["y"] if v is not None and math.isfinite(v) and (v > 0 or not log)]
        vals = [math.log10(v) for v in vals] if log else vals
        scale = (min(vals), max(vals)) if vals else None
        for k, r in enumerate(runs):
            i = ids.index(r["run_id"])
            last = next((v for v in reversed(r["y"]) if v is not None), None)
            ct.add_row(label if k == 0 else "", Text(chr(65 + i) if i < 26 else str(i), style=styles[i % len(styles)]),
                       Text(step_spark(r["x"], r["y"], x1, spark_w, log=log, scale=scale), style=styles[i % len(styles)]),
                       fmt_metric(name, last))
    parts.append(ct)
    return Group(*parts)


# ----------------------------------------------------------------------------------------- HTML


def render_compare_html(c: dict[str, Any]) -> str:
    from .report import svg
    from .report.html import page, section, table

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
            txt = escape(_fmt(row["key"], v))
            d = _delta(row["key"], v, base) if i else ""
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
        charts.append(f"<figure>{svg.line_chart(f'chart-compare-{name}', title, series, x_label=unit, y_fmt=kind, log_y=name in ('grad_norm',))}</figure>")
    curves = section("compare-curves", "Curves overlaid",
                     ('<div class="grid2">' + "".join(charts) + "</div>") if charts else '<p class="note">no curves recorded</p>')
    return page(f"compare: {' vs '.join(ids)}", "\n".join([head, spec, results, curves]),
                f"Training Cockpit {__version__} · run comparison")


def render_compare_json(c: dict[str, Any]) -> str:
    return json.dumps(c, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


# -------------------------------------------------------------------------------------- command


def compare_command(
    run_refs: list[str] = typer.Argument(..., metavar="RUN...", help="Two or more runs (id, unique part, 'last', or run dir)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="term (print here; the default), html, json, or all."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File (one format) or folder for compare.html / compare.json (default: .)."),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", envvar=RUNS_ENV, show_default=False,
                                            help="Where runs live (default ./runs)."),
    width: int = typer.Option(0, "--width", help="Terminal width (0: the terminal's).", show_default=False),
) -> None:
    """Compare runs: the spec fields that differ, the results side by side, the curves overlaid."""
    from rich.console import Console

    console, err = Console(width=width or None), Console(stderr=True)

    def fail(message: str, code: int = 2) -> None:
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(code)

    if len(run_refs) < 2:
        fail("compare needs at least two runs")
    runs: list[Run] = []
    try:
        for ref in run_refs:
            runs.append(resolve_run(ref, runs_dir))
    except StoreError as exc:
        fail(str(exc))
    seen = [r.path.resolve() for r in runs]
    if len(set(seen)) < len(seen):
        fail("the same run is named twice")
    try:
        c = compare_runs(runs)
    finally:
        for r in runs:
            r.close()
    f = (fmt or "term").strip().lower()
    if f in ("term", "terminal"):
        if out is not None:
            fail("--out needs a file format: --format html|json|all")
        console.print(terminal_compare(c, console.width))
        return
    formats = {"html": ["html"], "json": ["json"], "all": ["html", "json"]}.get(f)
    if formats is None:
        fail(f"unknown compare format {fmt!r}; choose from term, html, json, all")
    target = out or Path(".")
    paths = {}
    for kind in formats:
        if target.suffix.lower() in (".html", ".json") and not target.is_dir():
            paths[kind] = target if len(formats) == 1 else target.with_suffix(f".{kind}")
        else:
            paths[kind] = target / f"compare.{kind}"
    try:
        for kind, p in paths.items():
            write_atomic(p, render_compare_html(c) if kind == "html" else render_compare_json(c))
    except OSError as exc:
        fail(f"cannot write {exc.filename or target}: {exc.strerror or exc}", 1)
    for p in paths.values():
        console.print(f"wrote {p}", highlight=False, soft_wrap=True)
