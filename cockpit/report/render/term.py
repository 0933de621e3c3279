"""The report as Rich renderables, for the terminal (`cockpit report RUN --format term`)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from cockpit.core.formats import LEVEL_STYLE, STATE_STYLE
from engine.contracts import format_metric

from cockpit.core.formats import fmt_runtime, fmt_versions

from ..fmt import (METRIC_COLUMNS, PEAK_NOTE, best_headline, metric_rows, PASS_LABELS, calibration_method, class_names, curve_rows, fmt_clock, fmt_delta, fmt_delta_pct, fmt_duration, fmt_num,
                   fmt_pct, fmt_pct_std, fmt_time, fmt_value, layer_cell, layer_columns, marker_events, per_class_acc,
                   progress_text, toml_tables, confusion_model, selection_line)
from ..sections import SECTIONS
from .term_kit import bar, curves_table, marker_style
from ..system import TITLE as SYSTEM_TITLE, system_curves, system_note
from ..schema import Summary

# the sparkline rows of the training, throughput and difficulty sections: (label, metric, log scale)
CURVES = curve_rows(["train_loss", "test_loss", "val_loss", "train_acc", "test_acc", "val_acc", "lr", "grad_norm",
                     "grad_norm_max", "act/saturation", "act/dead"])
THROUGHPUT = curve_rows(["images_per_s", "step_time_ms", "data_time_ms", "memory_gb"])
DIFFICULTY = curve_rows([f"difficulty/{q}" for q in ("p10", "p50", "p90", "max")])


def heading(sid: str) -> Rule:
    return Rule(Text(SECTIONS[sid], style="bold"), align="left", style="grey50")


def note(text: str) -> Text:
    return Text(f"  {text}", style="italic grey50")


# ---------------------------------------------------------------------------------- sections


def header(s: Summary) -> Panel:
    run = s["run"]
    state = run["state"]
    grid = Table.grid(padding=(0, 2))
    for _ in range(3):
        grid.add_column(style="grey50", no_wrap=True)
        grid.add_column()
    facts = [
        ("preset", run.get("preset") or "–"), ("state", Text(state, style=STATE_STYLE.get(state, ""))),
        ("device", run.get("device") or "–"), ("progress", progress_text(run)),
        ("started", fmt_time(run.get("started") or run.get("created"))),
        ("ended", fmt_time(run.get("ended")) if run.get("ended") else ("running" if run.get("active") else "–")),
        ("duration", fmt_duration(run.get("duration_s"))), ("host", run.get("host") or "–"),
        ("ran with", fmt_runtime(run.get("runtime")) or "–"), ("versions", fmt_versions(run.get("runtime"), run.get("torch_version") or "") or "–"), ("cockpit", s.get("cockpit_version") or "–"),
    ]
    for i in range(0, len(facts), 3):
        row: list[Any] = []
        for k, v in facts[i:i + 3]:
            row += [k, v]
        grid.add_row(*row)
    parts: list[RenderableType] = [grid]
    best = best_headline(s)
    if best:
        parts.append(Text.assemble(("best test acc ", "grey50"), (best[0], "bold green"), (f" ({best[1]})", "grey50")))
    if run.get("error"):
        parts.append(Text(f"{state}: {run['error']}", style="bold red" if state in ("failed", "crashed") else "yellow"))
    title = Text.assemble((run["run_id"], "bold"), "  ", (state, STATE_STYLE.get(state, "")))
    return Panel(Group(*parts), title=title, title_align="left", subtitle=SECTIONS["header"], subtitle_align="right",
                 border_style="grey50", box=box.ROUNDED)


def spec_part(s: Summary) -> list[RenderableType]:
    out: list[RenderableType] = [heading("spec")]
    against = s.get("against")
    if against:
        if against.get("error"):
            out.append(note(f"cannot compare specs: {against['error']}"))
        elif not against["diff"]:
            out.append(note(f"identical to {against['run_id']}"))
        else:
            t = Table(title=f"differences against {against['run_id']}", title_justify="left", box=box.SIMPLE_HEAD,
                      header_style="bold")
            t.add_column("field", style="cyan")
            t.add_column(s["run"]["run_id"])
            t.add_column(against["run_id"])
            for d in against["diff"]:
                t.add_row(d["key"], fmt_value(d["this"]), fmt_value(d["other"]))
            out.append(t)
    if s.get("spec_error"):
        out.append(Text(f"spec.toml does not validate: {s['spec_error']}", style="bold red"))
    if s.get("spec_toml"):
        blocks = []
        for _, block in toml_tables(s["spec_toml"]):
            t = Text()
            for line in block.splitlines():
                if line.startswith("["):
                    t.append(line + "\n", style="bold magenta")
                elif " = " in line:
                    k, v = line.split(" = ", 1)
                    t.append(k, style="cyan")
                    t.append(" = " + v + "\n")
                else:
                    t.append(line + "\n")
            t.rstrip()
            blocks.append(t)
        out.append(Columns(blocks, padding=(0, 3), equal=False))
    else:
        out.append(note("no spec.toml in the run directory"))
    return out


def metrics_part(s: Summary) -> list[RenderableType]:
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for i, col in enumerate(METRIC_COLUMNS):
        t.add_column(col, justify="left" if i == 0 else "right", style="grey50" if i == 4 else None)
    rows = metric_rows(s)
    for label, _name, final, best, peak, at in rows:
        t.add_row(label, final, best, peak, at)
    sel = selection_line(s)
    return [heading("metrics"), t if rows else note(s["notes"].get("metrics", "no metrics recorded"))] + (
        [Text(sel, style="grey50")] if sel else []) + ([Text(PEAK_NOTE, style="grey50")] if rows else [])


def finishing_part(s: Summary) -> list[RenderableType]:
    rows = s["finishing"]
    out: list[RenderableType] = [heading("finishing")]
    if len(rows) <= 1:
        out.append(note(s["notes"].get("finishing", "no finishing passes were run")))
    if rows:
        t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for col, just in (("pass", "left"), ("model", "left"), ("accuracy", "right"), ("Δ acc", "right"),
                          ("loss/NLL", "right"), ("Δ loss", "right"), ("Δ against", "left"), ("ECE", "right"),
                          ("detail", "left")):
            t.add_column(col, justify=just)
        for r in rows:
            da = Text(fmt_delta_pct(r["delta_acc"]), style="green" if (r["delta_acc"] or 0) > 0 else "red" if (r["delta_acc"] or 0) < 0 else "")
            dl = Text(fmt_delta(r["delta_loss"]), style="green" if (r["delta_loss"] or 0) < 0 else "red" if (r["delta_loss"] or 0) > 0 else "")
            t.add_row(PASS_LABELS.get(r["pass"], r["pass"]), r.get("model") or "", fmt_pct_std(r["acc"], r.get("acc_std")), da,
                      fmt_num(r["loss"]) if r["loss"] is not None else "–", dl, r.get("baseline") or "",
                      fmt_pct(r["ece"]), r["detail"] or "")
        out.append(t)
    tta = s["results"].get("tta")
    if tta and tta.get("views"):
        out.append(Text("TTA views: " + ", ".join(f"{k} {fmt_pct(v)}" for k, v in tta["views"].items()), style="grey50"))
    return out


def training_part(s: Summary, width: int, markers: list[dict[str, Any]]) -> list[RenderableType]:
    t = curves_table(s, CURVES + curve_rows(n for n in sorted(s["series"]) if n.startswith("lr/")), width, markers)
    return [heading("training"), t or note(s["notes"].get("metrics", "no metrics recorded yet"))]


def calibration_part(s: Summary) -> list[RenderableType]:
    cal = s["results"].get("calibrate")
    out: list[RenderableType] = [heading("calibration")]
    if not cal:
        return out + [note(s["notes"]["calibration"])]
    before, after = cal.get("before") or {}, cal.get("after") or {}
    out.append(Text.assemble(("temperature ", "grey50"), (fmt_num(cal.get("temperature"), 4), "bold"),
                             (f" ({calibration_method(cal)})", "grey50"),
                             ("   NLL ", "grey50"), f"{fmt_num(before.get('nll'))} → {fmt_num(after.get('nll'))}",
                             ("   ECE ", "grey50"), f"{fmt_pct(before.get('ece'))} → {fmt_pct(after.get('ece'))}",
                             ("   accuracy ", "grey50"), f"{fmt_pct(before.get('acc'))} → {fmt_pct(after.get('acc'))}"))
    rel = cal.get("reliability") or {}
    tables = []
    for label in ("before", "after"):
        rows = rel.get(label) or []
        if not rows:
            continue
        t = Table(title=f"reliability {label}", title_justify="left", box=box.SIMPLE_HEAD, header_style="bold",
                  pad_edge=False)
        t.add_column("conf", justify="right")
        t.add_column("acc", justify="right")
        t.add_column("n", justify="right", style="grey50")
        t.add_column("accuracy (│ = confidence)")
        for r in rows:
            if not r.get("count", 1) or r.get("conf") is None or r.get("acc") is None:
                continue
            t.add_row(f"{r['conf']:.2f}", f"{r['acc']:.2f}", fmt_num(r.get("count")), bar(r["acc"], 24, r["conf"]))
        tables.append(t)
    if tables:
        out.append(Columns(tables, padding=(0, 4)))
    return out


def heat_style(frac: float) -> str:
    f = min(max(frac, 0.0), 1.0) ** 0.7
    lo, hi = (240, 246, 252), (8, 48, 107)
    r, g, b = (round(a + (c - a) * f) for a, c in zip(lo, hi))
    fg = "white" if f > 0.55 else "black"
    return f"{fg} on rgb({r},{g},{b})"


def classes_part(s: Summary) -> list[RenderableType]:
    conf = s["results"].get("confusion")
    out: list[RenderableType] = [heading("classes")]
    if not conf:
        return out + [note(s["notes"]["classes"])]
    names, accs = per_class_acc(s)
    parts: list[RenderableType] = []
    if accs:
        t = Table(title=f"per-class accuracy ({confusion_model(s)})", title_justify="left", box=box.SIMPLE_HEAD,
                  header_style="bold",
                  pad_edge=False)
        t.add_column("class")
        t.add_column("acc", justify="right")
        t.add_column("")
        for n, a in list(zip(names, accs))[:40]:
            t.add_row(n, fmt_pct(a, 1), bar(a, 20))
        parts.append(t)
    matrix = conf.get("matrix") or []
    if matrix:
        labels = class_names(s) or [str(i) for i in range(len(matrix))]
        if len(matrix) <= 20:
            cw = max(max((len(f"{v:g}") for row in matrix for v in row), default=1), 3)
            fits = len(labels) == len(matrix) and all(len(x) <= cw for x in labels)
            hm = Table(title=f"confusion matrix of {confusion_model(s)} (rows: true, cols: predicted)",
                       title_justify="left", box=None,
                       padding=0, pad_edge=False, show_header=True, header_style="grey50")
            hm.add_column("", justify="right", no_wrap=True)
            for j in range(len(matrix)):
                hm.add_column(Text(labels[j] if fits else str(j)), justify="right", width=cw + 1, no_wrap=True)
            for i, row in enumerate(matrix):
                total = sum(v or 0 for v in row) or 1
                cells = [Text(f"{(v or 0):g} ".rjust(cw + 1), style=heat_style((v or 0) / total)) for v in row]
                name = labels[i] if i < len(labels) else str(i)
                hm.add_row(Text((name if fits else f"{i} {name}")[:14] + " "), *cells)
            parts.append(hm)
        else:
            t = Text("confusion matrix (row share)\n", style="bold")
            for row in matrix:
                total = sum(v or 0 for v in row) or 1
                for v in row:
                    t.append("█", style=heat_style((v or 0) / total).split(" on ")[1])
                t.append("\n")
            parts.append(t)
    out.append(Columns(parts, padding=(0, 4)))
    return out


def difficulty_part(s: Summary, width: int) -> list[RenderableType]:
    out: list[RenderableType] = [heading("difficulty")]
    if "difficulty" in s["notes"]:
        return out + [note(s["notes"]["difficulty"])]
    t = curves_table(s, DIFFICULTY, width)
    if t:
        out.append(t)
    d = s["difficulty"]
    if d["hist"]:
        edges = d["hist_edges"]
        ht = Table(title="per-sample loss histogram" + (f" at step {d['hist_step']:,}" if d.get("hist_step") is not None else ""),
                   title_justify="left", box=None, pad_edge=False, show_header=False)
        ht.add_column(justify="right", style="grey50")
        ht.add_column(justify="right")
        ht.add_column()
        top = max((v or 0) for v in d["hist"]) or 1
        for i, v in enumerate(d["hist"]):
            lab = (f"{edges[i]:g}–{edges[i + 1]:g}" if i < len(d["hist"]) - 1 else f"{edges[i]:g}+") if edges else str(i)
            ht.add_row(lab, fmt_pct(v, 1), bar((v or 0) / top, 30))
        out.append(ht)
    return out


def throughput_part(s: Summary, width: int) -> list[RenderableType]:
    out: list[RenderableType] = [heading("throughput")]
    if "throughput" in s["notes"]:
        return out + [note(s["notes"]["throughput"])]
    t = curves_table(s, THROUGHPUT, width)
    return out + [t or note("no throughput measurements yet")] + system_part(s, width)


def system_part(s: Summary, width: int) -> list[RenderableType]:
    out: list[RenderableType] = [Text(SYSTEM_TITLE, style="bold")]
    t = curves_table(s, system_curves(s), width)
    said = system_note(s)
    return out + ([t] if t else []) + ([note(said)] if said else [])


def layers_part(s: Summary) -> list[RenderableType]:
    out: list[RenderableType] = [heading("layers")]
    rows = s["layers"]
    if not rows:
        return out + [note(s["notes"].get("layers", "no per-layer instruments recorded"))]
    cols = layer_columns(rows)
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    t.add_column("layer")
    for _, h in cols:
        t.add_column(h, justify="right")
    for r in rows:
        t.add_row(r["name"], *[layer_cell(r, k) for k, _ in cols])
    return out + [t]


def hardest_part(s: Summary) -> list[RenderableType]:
    out: list[RenderableType] = [heading("hardest")]
    h = s["results"].get("hardest")
    if not h or not h.get("examples"):
        return out + [note(s["notes"].get("hardest", "no hardest-examples pass recorded"))]
    names = class_names(s)

    def cname(i: Any) -> str:
        return f"{names[i]}" if isinstance(i, int) and 0 <= i < len(names) else str(i)

    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
              title=f"highest-loss test images at step {h.get('_step', 0):,}", title_justify="left")
    for col, just in (("index", "right"), ("label", "left"), ("predicted", "left"), ("loss", "right")):
        t.add_column(col, justify=just)
    for e in h["examples"][:10]:
        t.add_row(str(e.get("index", "")), cname(e.get("label")),
                  Text(cname(e.get("pred")), style="red" if e.get("pred") != e.get("label") else ""),
                  fmt_num(e.get("loss"), 4))
    return out + [t]


def timeline_part(s: Summary, markers: list[dict[str, Any]], limit: int = 30) -> list[RenderableType]:
    out: list[RenderableType] = [heading("timeline")]
    events = s["events"]
    if not events:
        return out + [note("no events recorded")]
    numbers = {m["id"]: m["n"] for m in markers}
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for col, just in (("#", "right"), ("step", "right"), ("time", "left"), ("kind", "left"), ("message", "left")):
        t.add_column(col, justify=just)
    shown = events if len(events) <= limit else events[:5] + events[-(limit - 5):]
    for e in shown:
        n = numbers.get(e["id"])
        t.add_row(Text(str(n), style=f"bold {marker_style(e)}") if n else "", f"{e['step']:,}", fmt_clock(e["wall"]),
                  Text(e["kind"], style=marker_style(e) if n else "grey50"),
                  Text(e["message"], style=LEVEL_STYLE.get(e["level"], "")))
    out.append(t)
    if len(events) > limit:
        out.append(note(f"{len(events) - limit} events not shown (all in report.json)"))
    return out


def terminal_report(summary: Summary, width: int = 120) -> Group:
    """The whole report as one Rich renderable."""
    s = summary
    markers = marker_events(s)
    parts: list[RenderableType] = [header(s)]
    for chunk in (spec_part(s), metrics_part(s), finishing_part(s), training_part(s, width, markers),
                  calibration_part(s), classes_part(s), difficulty_part(s, width), throughput_part(s, width),
                  layers_part(s), hardest_part(s), timeline_part(s, markers)):
        parts.extend(chunk)
    return Group(*parts)
