"""The HTML report: one self-contained file (inline CSS and SVG charts; no scripts, fonts or network)."""

from __future__ import annotations

from html import escape
from typing import Any, Iterable

from engine.contracts import format_metric
from engine.store import NOT_RESPONDING

from cockpit.core.formats import fmt_runtime, fmt_versions
from cockpit.core.interventions import TITLE as INTERVENTIONS_TITLE, intervention_rows

from ..fmt import (METRIC_COLUMNS, PEAK_NOTE, best_headline, metric_rows, PASS_LABELS, calibration_method, class_names, fmt_clock, fmt_delta, fmt_delta_pct, fmt_duration, fmt_num,
                   fmt_pct, fmt_pct_std, fmt_time, fmt_value, layer_cell, layer_columns, marker_events, per_class_acc,
                   progress_text, toml_tables, confusion_model, selection_line)
from ..sections import SECTIONS
from . import svg
from .html_kit import figure, note, page, section, signed, table
from .line_chart import line_chart
from .thumbs import thumb_cards
from ..system import TITLE as SYSTEM_TITLE, system_note, system_table_rows
from ..schema import Summary

STATE_COLORS = {
    "created": ("#fef3c7", "#92400e"), "running": ("#dcfce7", "#166534"), "paused": ("#fef3c7", "#92400e"),
    "finished": ("#dcfce7", "#166534"), "stopped": ("#fef3c7", "#92400e"), "failed": ("#fee2e2", "#991b1b"),
    "crashed": ("#fee2e2", "#991b1b"), NOT_RESPONDING: ("#fee2e2", "#991b1b"),
}

# ------------------------------------------------------------------------------------ series


def series_color(name: str, i: int) -> str:
    for key in ("swa", "train", "test", "val"):
        if name.startswith(key):
            return svg.SERIES_COLORS[key]
    return svg.PALETTE[i % len(svg.PALETTE)]


def pick(summary: Summary, names: Iterable[str], labels: dict[str, str] | None = None,
         x_of=None) -> list[dict[str, Any]]:
    """Chart series for the metric names that exist, in the given order."""
    out = []
    series = summary.get("series") or {}
    for i, n in enumerate(names):
        s = series.get(n)
        if not s or not s["step"]:
            continue
        xs = s["step"] if x_of is None else [x_of(x) for x in s["step"]]
        item = {"name": (labels or {}).get(n, n), "x": xs, "y": s["value"], "color": series_color(n, i)}
        if n.startswith("swa"):
            item["dots"] = True
        out.append(item)
    return out


def step_chart(summary: Summary, chart_id: str, title: str, names: Iterable[str], *, y_fmt: str = "num",
               log_y: bool = False, labels: dict[str, str] | None = None, markers: list | None = None,
               width: float = 560, height: float = 290) -> str:
    run = summary["run"]
    total = run.get("total_steps") or 0
    last = run.get("step") or 0
    x_range = (0, max(total, last)) if max(total, last) > 0 else None
    return line_chart(chart_id, title, pick(summary, names, labels), markers=markers or [], y_fmt=y_fmt,
                          log_y=log_y, x_range=x_range, epoch_steps=run.get("steps_per_epoch") or 0,
                          width=width, height=height)


# ------------------------------------------------------------------------------------ sections


def header_html(s: Summary) -> str:
    run = s["run"]
    state = run["state"]
    bg, fg = STATE_COLORS.get(state, ("#e5e7eb", "#374151"))
    preset = run.get("preset") or "–"
    facts = [
        ("preset", preset), ("state", state), ("device", run.get("device") or "–"),
        ("progress", progress_text(run)),
        ("started", fmt_time(run.get("started") or run.get("created"))),
        ("ended", fmt_time(run.get("ended")) if run.get("ended") else ("still running" if run.get("active") else "–")),
        ("duration", fmt_duration(run.get("duration_s")) + (" so far" if run.get("active") and run.get("duration_s") else "")),
        ("host", run.get("host") or "–"),
        ("ran with", fmt_runtime(run.get("runtime")) or "–"), ("versions", fmt_versions(run.get("runtime"), run.get("torch_version") or "") or "–"), ("cockpit", s.get("cockpit_version") or "–"),
        ("run name", run.get("name") or "–"), ("run dir", run.get("path") or "–"),
    ]
    final = s["metrics"]["final"]
    kpis = []
    if (headline := best_headline(s)) is not None:
        kpis.append(("best test acc", *headline))
    if final.get("test_acc") is not None:
        kpis.append(("final test acc", fmt_pct(final["test_acc"]), ""))
    if final.get("test_loss") is not None:
        kpis.append(("final test loss", format_metric("test_loss", final["test_loss"]), ""))
    if final.get("train_loss") is not None:
        kpis.append(("final train loss", format_metric("train_loss", final["train_loss"]), ""))
    top_pass = max((r for r in s["finishing"] if r["pass"] != "base" and r["acc"] is not None),
                   key=lambda r: r["acc"], default=None)
    if top_pass:
        kpis.append((f"{PASS_LABELS.get(top_pass['pass'], top_pass['pass'])} acc", fmt_pct_std(top_pass["acc"], top_pass.get("acc_std")),
                     fmt_delta_pct(top_pass["delta_acc"])))
    if final.get("images_per_s") is not None:
        kpis.append(("images / s", format_metric("images_per_s", final["images_per_s"]), "last window"))
    nav = "".join(f'<a href="#{sid}">{escape(h)}</a>' for sid, h in SECTIONS.items() if sid != "header")
    parts = [
        '<div class="top">'
        f"<h1>{escape(run['run_id'])}</h1>"
        f'<span class="badge" style="background:{bg};color:{fg}">{escape(state)}</span></div>',
        f'<div class="sub">Training Cockpit run report · {escape(str(preset))} · {escape(run.get("device") or "device unknown")}</div>',
        '<dl class="facts">' + "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(str(v))}</dd></div>" for k, v in facts) + "</dl>",
    ]
    if kpis:
        parts.append('<div class="kpis">' + "".join(
            f'<div class="kpi"><div class="l">{escape(label)}</div><div class="v">{escape(v)}</div>'
            f'<div class="l" style="text-transform:none">{escape(sub)}</div></div>' for label, v, sub in kpis) + "</div>")
    if run.get("error"):
        klass = "error" if state in ("failed", "crashed") else "error warn"
        parts.append(f'<div class="{klass}"><b>{escape(state)}:</b> {escape(run["error"])}</div>')
    parts.append(f'<nav class="toc">{nav}</nav>')
    return '<section class="card" id="header">\n' + "\n".join(parts) + "\n</section>"


def interventions_html(s: Summary) -> str:
    """What was done to the run (and to the run it is set against) beyond its spec, from the events."""
    named = [(s["run"]["run_id"], s.get("interventions") or [])]
    against = s.get("against")
    if against:
        named.append((against["run_id"], against.get("interventions") or []))
    rows = [[run, step, epoch, (f"<code>{escape(action)}</code>", "") if action else "", what]
            for run, step, epoch, action, what in intervention_rows(named)]
    return f'<h3 id="interventions">{escape(INTERVENTIONS_TITLE)}</h3>' + table(
        ["run", "step", "epoch", "action", "what"], rows, num=(1, 2))


def spec_html(s: Summary) -> str:
    parts = []
    against = s.get("against")
    if against:
        parts.append(f'<h3 id="spec-diff">Differences against {escape(against["run_id"])}</h3>')
        if against.get("error"):
            parts.append(note(f"cannot compare specs: {against['error']}"))
        elif not against["diff"]:
            parts.append(note("the two specs are identical"))
        else:
            parts.append(table(["field", s["run"]["run_id"], against["run_id"]],
                               [(( f"<code>{escape(d['key'])}</code>", ""), (f"<code>{escape(fmt_value(d['this']))}</code>", ""),
                                 (f"<code>{escape(fmt_value(d['other']))}</code>", "")) for d in against["diff"]]))
    parts.append(interventions_html(s))
    if s.get("spec_error"):
        parts.append(f'<div class="error">spec.toml does not validate: {escape(s["spec_error"])}</div>')
    if s.get("spec_toml"):
        parts.append('<h3>spec.toml</h3><div class="toml">' + "".join(
            f"<pre>{escape(block)}</pre>" for _, block in toml_tables(s["spec_toml"])) + "</div>")
    else:
        parts.append(note("no spec.toml in the run directory"))
    return section("spec", SECTIONS["spec"], "\n".join(parts))


def metrics_html(s: Summary) -> str:
    rows = [(label, (f"<code>{escape(name)}</code>", ""), final, best, peak, at)
            for label, name, final, best, peak, at in metric_rows(s)]
    if not rows:
        return section("metrics", SECTIONS["metrics"], note(s["notes"].get("metrics", "no metrics recorded")))
    sel = selection_line(s)
    columns = [METRIC_COLUMNS[0], "name", *METRIC_COLUMNS[1:]]
    return section("metrics", SECTIONS["metrics"],
                   table(columns, rows, num=(2, 3, 4, 5)) + (f"<p>{escape(sel)}.</p>" if sel else "")
                   + note(PEAK_NOTE.capitalize() + "."))


def finishing_html(s: Summary) -> str:
    rows = s["finishing"]
    parts = []
    if len(rows) <= 1:
        parts.append(note(s["notes"].get("finishing", "no finishing passes were run")))
    if rows:
        parts.append(table(
            ["pass", "model", "accuracy", "Δ accuracy", "loss / NLL", "Δ loss", "Δ against", "ECE", "detail"],
            [(PASS_LABELS.get(r["pass"], r["pass"]), r.get("model") or "", fmt_pct_std(r["acc"], r.get("acc_std")),
              signed(r["delta_acc"], fmt_delta_pct(r["delta_acc"])),
              fmt_num(r["loss"]) if r["loss"] is not None else "–",
              signed(r["delta_loss"], fmt_delta(r["delta_loss"]), higher_is_better=False),
              r.get("baseline") or "", fmt_pct(r["ece"]), r["detail"] or "") for r in rows],
            num=(2, 3, 4, 5, 7)))
    res = s["results"]
    tta = res.get("tta")
    if tta and tta.get("views"):
        parts.append("<h3>TTA views</h3>" + table(["view", "accuracy"],
                                                  [(v, fmt_pct(a)) for v, a in tta["views"].items()], num=(1,)))
    ens = res.get("ensemble")
    if ens:
        parts.append("<h3>Ensemble</h3>")
        members = [m for m in ens.get("members") or [] if isinstance(m, dict)]
        if members:
            parts.append(table(["member", "accuracy", "NLL"],
                               [(str(m.get("run", m.get("name", ""))), fmt_pct(m.get("acc")), fmt_num(m.get("nll")))
                                for m in members], num=(1, 2)))
        kv = [(k, fmt_pct(v) if k.endswith("acc") else fmt_delta_pct(v) if k.endswith("gain") else fmt_num(v))
              for k, v in ens.items() if not k.startswith("_") and k not in ("acc", "nll", "loss")
              and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if kv:
            parts.append(table(["field", "value"], kv, num=(1,)))
    other = res.get("other") or {}
    for kind, data in other.items():
        kv = [(k, fmt_value(v) if not isinstance(v, float) else fmt_num(v)) for k, v in data.items()
              if not k.startswith("_") and not isinstance(v, (dict, list))]
        if kv:
            parts.append(f"<h3>{escape(kind)}</h3>" + table(["field", "value"], kv))
    return section("finishing", SECTIONS["finishing"], "\n".join(parts))


def marker_legend(markers: list[dict[str, Any]]) -> str:
    if not markers:
        return ""
    kinds: dict[str, str] = {}
    for m in markers:
        kinds.setdefault(m["kind"], svg.marker_color(m))
    items = "".join(f'<span><span class="sw" style="background:{c}"></span>{escape(k)}</span>' for k, c in kinds.items())
    dense = sum(1 for m in markers if svg.is_alarm(m)) > svg.DENSE_ALARMS
    what = "Dashed lines: events; ticks along the top: alarms" if dense else "Dashed lines: events"
    return (f'<div class="legend"><span>{what} (numbers match the '
            f'<a href="#timeline">timeline</a>)</span>{items}</div>')


def training_html(s: Summary, markers: list[dict[str, Any]]) -> str:
    if not s["series"]:
        return section("training", SECTIONS["training"], note(s["notes"].get("metrics", "no metrics recorded yet")))
    lr_names = ["lr"] + sorted(n for n in s["series"] if n.startswith("lr/"))
    charts = [
        step_chart(s, "chart-loss", "Loss", ["train_loss", "test_loss", "val_loss", "swa_test_loss"], markers=markers,
                   log_y=True),
        step_chart(s, "chart-accuracy", "Accuracy", ["train_acc", "test_acc", "val_acc", "swa_test_acc"], y_fmt="pct",
                   markers=markers),
        step_chart(s, "chart-lr", "Learning rate", lr_names, markers=markers),
        step_chart(s, "chart-grad-norm", "Gradient norm", ["grad_norm", "grad_norm_max"], log_y=True, markers=markers,
                   labels={"grad_norm": "grad norm (mean)", "grad_norm_max": "grad norm (max)"}),
        step_chart(s, "chart-saturation", "Activation saturation and dead units", ["act/saturation", "act/dead"],
                   y_fmt="pct", markers=markers, labels={"act/saturation": "saturation", "act/dead": "dead units"}),
    ]
    return section("training", SECTIONS["training"],
                   marker_legend(markers) + '<div class="grid2">' + "".join(figure(c) for c in charts) + "</div>")


def calibration_html(s: Summary) -> str:
    cal = s["results"].get("calibrate")
    if not cal:
        return section("calibration", SECTIONS["calibration"], note(s["notes"]["calibration"]))
    before, after = cal.get("before") or {}, cal.get("after") or {}
    rel = cal.get("reliability") or {}
    t = cal.get("temperature")
    panels = []
    if rel.get("before"):
        panels.append((f"before · ECE {fmt_pct(before.get('ece'))}", rel["before"]))
    if rel.get("after"):
        panels.append((f"after (T = {fmt_num(t, 3)}) · ECE {fmt_pct(after.get('ece'))}", rel["after"]))
    bins = ((s.get("spec") or {}).get("evaluate") or {}).get("ece_bins") or 0
    chart = svg.reliability("chart-reliability", "Reliability diagram", panels, bins=bins) if panels else \
        note("no reliability bins in the calibration result")
    tbl = table(["", "NLL", "ECE", "accuracy"],
                [("before", fmt_num(before.get("nll")), fmt_pct(before.get("ece")), fmt_pct(before.get("acc"))),
                 ("after", fmt_num(after.get("nll")), fmt_pct(after.get("ece")), fmt_pct(after.get("acc")))],
                num=(1, 2, 3))
    side = (f"<div><h3>Temperature scaling</h3><p>temperature <b>{escape(fmt_num(t, 4))}</b>, fitted on the validation "
            f"split by {escape(calibration_method(cal))}</p>{tbl}</div>")
    return section("calibration", SECTIONS["calibration"], f'<div class="grid2">{figure(chart)}{side}</div>')


def classes_html(s: Summary) -> str:
    conf = s["results"].get("confusion")
    if not conf:
        return section("classes", SECTIONS["classes"], note(s["notes"]["classes"]))
    names, accs = per_class_acc(s)
    mean = sum(a for a in accs if a is not None) / max(sum(a is not None for a in accs), 1) if accs else None
    charts = []
    if accs:
        charts.append(svg.hbar_chart("chart-per-class", f"Per-class accuracy ({confusion_model(s)})", names, accs,
                                     vmax=1.0,
                                     highlight_below=mean))
    matrix = conf.get("matrix") or []
    if matrix:
        charts.append(svg.heatmap("chart-confusion", f"Confusion matrix ({confusion_model(s)})", matrix,
                                  class_names(s) or names))
    legend = (f'<div class="legend"><span><span class="sw" style="background:#ea580c"></span>below the mean '
              f'({fmt_pct(mean)})</span></div>') if mean is not None else ""
    return section("classes", SECTIONS["classes"], legend + '<div class="grid2">' + "".join(figure(c) for c in charts) + "</div>")


def difficulty_html(s: Summary, markers: list[dict[str, Any]]) -> str:
    d = s["difficulty"]
    if "difficulty" in s["notes"]:
        return section("difficulty", SECTIONS["difficulty"], note(s["notes"]["difficulty"]))
    charts = []
    if d["quantiles"]:
        charts.append(step_chart(s, "chart-difficulty", "Per-sample loss quantiles",
                                 [f"difficulty/{q}" for q in ("p10", "p50", "p90", "max")], markers=markers,
                                 labels={f"difficulty/{q}": q for q in ("p10", "p50", "p90", "max")}))
    if d["hist"]:
        edges = d["hist_edges"]
        labels = [f"{edges[i]:g}" + ("+" if i == len(d["hist"]) - 1 else "") if edges else str(i) for i in range(len(d["hist"]))]
        title = "Per-sample loss histogram" + (f" (step {d['hist_step']:,})" if d.get("hist_step") is not None else "")
        charts.append(svg.column_chart("chart-difficulty-hist", title, labels, d["hist"], fmt=svg.tick_pct,
                                       x_label="per-sample loss", height=290, color="#0891b2"))
    return section("difficulty", SECTIONS["difficulty"], '<div class="grid2">' + "".join(figure(c) for c in charts) + "</div>")


def throughput_html(s: Summary, markers: list[dict[str, Any]]) -> str:
    if "throughput" in s["notes"]:
        return section("throughput", SECTIONS["throughput"], note(s["notes"]["throughput"]))
    charts = [
        step_chart(s, "chart-throughput", "Throughput (images / s)", ["images_per_s"], markers=markers,
                   labels={"images_per_s": "images / s"}),
        step_chart(s, "chart-step-time", "Step time (ms)", ["step_time_ms", "data_time_ms"], markers=markers,
                   labels={"step_time_ms": "step", "data_time_ms": "data"}),
    ]
    extra = ""
    final = s["metrics"]["final"]
    if final.get("memory_gb") is not None:
        extra = f"<p>peak GPU memory: <b>{final['memory_gb']:.2f} GB</b></p>"
    return section("throughput", SECTIONS["throughput"], extra + '<div class="grid2">' + "".join(figure(c) for c in charts)
                   + "</div>" + system_html(s))


def system_html(s: Summary) -> str:
    rows, said = system_table_rows(s), system_note(s)
    return (f"<h3>{escape(SYSTEM_TITLE)}</h3>" + (table(["metric", "last", "min", "max"], rows, num=(1, 2, 3)) if rows else "")
            + (note(said) if said else ""))


def layers_html(s: Summary) -> str:
    rows = s["layers"]
    if not rows:
        return section("layers", SECTIONS["layers"], note(s["notes"].get("layers", "no per-layer instruments recorded")))
    cols = layer_columns(rows)
    body = [[r["name"]] + [layer_cell(r, k) for k, _ in cols] for r in rows]
    return section("layers", SECTIONS["layers"],
                   "<p class=\"sub\">Last measured values per block / parameter group.</p>" +
                   table(["layer"] + [h for _, h in cols], body, num=range(1, len(cols) + 1)))


def hardest_html(s: Summary) -> str:
    h = s["results"].get("hardest")
    if not h or not h.get("examples"):
        return section("hardest", SECTIONS["hardest"], note(s["notes"].get("hardest", "no hardest-examples pass recorded")))
    names = class_names(s)

    def cname(i: Any) -> str:
        return f"{names[i]} ({i})" if isinstance(i, int) and 0 <= i < len(names) else str(i)

    rows = [(f"{e.get('index', ''):,}" if isinstance(e.get("index"), int) else str(e.get("index", "")),
             cname(e.get("label")), (escape(cname(e.get("pred"))), "neg" if e.get("pred") != e.get("label") else ""),
             fmt_num(e.get("loss"), 4)) for e in h["examples"][:50]]
    return section("hardest", SECTIONS["hardest"],
                   f'<p class="sub">The test images with the highest loss at step {h.get("_step", 0):,}.</p>'
                   + thumb_cards(h["examples"], cname)
                   + '<div class="scroll">' + table(["index", "label", "predicted", "loss"], rows, num=(0, 3)) + "</div>")


def timeline_html(s: Summary, markers: list[dict[str, Any]]) -> str:
    run = s["run"]
    chart = svg.timeline("chart-timeline", "Run timeline", markers, total=run.get("total_steps") or 0,
                         epoch_steps=run.get("steps_per_epoch") or 0, current=run.get("step") or 0)
    numbers = {m["id"]: m["n"] for m in markers}
    events = s["events"]
    limit = 300
    rows, classes = [], []
    for e in events[:limit]:
        n = numbers.get(e["id"])
        badge = (f'<span class="mk" style="background:{svg.marker_color(e)}">{n}</span>', "") if n else ("", "")
        ep = f"{e['epoch']:.2f}" if e.get("epoch") is not None else ""
        rows.append((badge, f"{e['step']:,}", ep, fmt_clock(e["wall"]), e["kind"], e["level"], e["message"]))
        classes.append(e["level"] if e["level"] in ("warning", "error") else "")
    parts = [figure(chart)]
    if rows:
        parts.append('<div class="scroll">' + table(["#", "step", "epoch", "time", "kind", "level", "message"], rows,
                                                    num=(1, 2), row_classes=classes) + "</div>")
        if len(events) > limit:
            parts.append(note(f"{len(events) - limit} more events in report.json"))
    else:
        parts.append(note("no events recorded"))
    return section("timeline", SECTIONS["timeline"], "\n".join(parts))


def render_html(summary: Summary) -> str:
    s = summary
    markers = marker_events(s)
    body = "\n".join([
        header_html(s), spec_html(s), metrics_html(s), finishing_html(s), training_html(s, markers),
        calibration_html(s), classes_html(s), difficulty_html(s, markers), throughput_html(s, markers),
        layers_html(s), hardest_html(s), timeline_html(s, markers),
    ])
    gen = f"Training Cockpit {s.get('cockpit_version', '')} · report schema {s['schema_version']} · generated {fmt_time(s.get('generated'))}"
    return page(f"{s['run']['run_id']} · run report", body, gen)
