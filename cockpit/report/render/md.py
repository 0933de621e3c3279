"""The Markdown report: tables and sparklines, one `## heading` per section (the same headings as the HTML).

Every text the run carries goes through md_kit (escaped unless built as Markdown there), as the HTML report
escapes its text: a tag or a link in a data path, an error or an event shows as text."""

from __future__ import annotations

from typing import Any, Iterable

from engine.contracts import format_metric

from cockpit.core.formats import fmt_runtime, fmt_versions
from cockpit.core.interventions import TITLE as INTERVENTIONS_TITLE, intervention_rows

from ..fmt import (METRIC_COLUMNS, PEAK_NOTE, metric_rows, PASS_LABELS, calibration_method, class_names, compact_toml, curve_rows, fmt_clock, fmt_delta, fmt_delta_pct,
                   fmt_duration, fmt_num, fmt_pct, fmt_pct_std, fmt_time, fmt_value, layer_cell, layer_columns, marker_events,
                   per_class_acc, progress_text, confusion_model, selection_line)
from ..sections import SECTIONS
from .md_kit import bold, code, code_block, esc, italic, md_table
from .term import CURVES, DIFFICULTY, THROUGHPUT
from .term_kit import step_spark
from ..system import TITLE as SYSTEM_TITLE, system_curves, system_note
from ..schema import Summary

SPARK_W = 48


def h2(sid: str) -> str:
    return f"## {SECTIONS[sid]}"


def curves(s: Summary, items: Iterable[tuple[str, str, bool]]) -> str:
    run = s["run"]
    x1 = max(run.get("total_steps") or 0, run.get("step") or 0, 1)
    rows = []
    for label, name, log in items:
        sr = s["series"].get(name)
        if not sr or not any(v is not None for v in sr["value"]):
            continue
        vals = [v for v in sr["value"] if v is not None]
        rows.append((label, format_metric(name, vals[-1]), format_metric(name, min(vals)), format_metric(name, max(vals)),
                     code(step_spark(sr['step'], sr['value'], x1, SPARK_W, log))))
    return md_table(["curve", "last", "min", "max", f"steps 0 → {x1:,}"], rows, right=(1, 2, 3)) if rows else ""


def render_markdown(summary: Summary) -> str:
    """The whole report as Markdown: every section in order, a note where a section has no data."""
    s = summary
    markers = marker_events(s)
    out: list[str] = [f"# Run report: {esc(s['run']['run_id'])}", ""]
    for part in (header_md(s), spec_md(s), metrics_md(s), finishing_md(s), training_md(s, markers),
                 calibration_md(s), classes_md(s), difficulty_md(s), throughput_md(s), layers_md(s), hardest_md(s),
                 timeline_md(s, markers)):
        out += part
    out += ["---", italic(f"Training Cockpit {s.get('cockpit_version', '')} · report schema {s['schema_version']} · "
                          f"generated {fmt_time(s.get('generated'))}"), ""]
    return "\n".join(out)


def note(text: str) -> list[str]:
    return [italic(text), ""]


def header_md(s: Summary) -> list[str]:
    run = s["run"]
    out = [h2("header"), "", md_table(["", ""], [
        ("state", bold(run['state'])), ("preset", run.get("preset") or "–"), ("device", run.get("device") or "–"),
        ("progress", progress_text(run)), ("started", fmt_time(run.get("started") or run.get("created"))),
        ("ended", fmt_time(run.get("ended")) if run.get("ended") else ("still running" if run.get("active") else "–")),
        ("duration", fmt_duration(run.get("duration_s"))), ("host", run.get("host") or "–"),
        ("ran with", fmt_runtime(run.get("runtime")) or "–"), ("versions", fmt_versions(run.get("runtime"), run.get("torch_version") or "") or "–"), ("cockpit", s.get("cockpit_version") or "–"),
        ("run dir", code(run.get('path', ''))),
    ])]
    if run.get("error"):
        out += ["", f"> {bold(str(run['state']) + ':')} {esc(run['error'])}"]
    return out + [""]


def spec_md(s: Summary) -> list[str]:
    out = [h2("spec"), ""]
    against = s.get("against")
    if against:
        if against.get("error"):
            out += note(f"cannot compare specs: {against['error']}")
        elif not against["diff"]:
            out += note(f"identical to {against['run_id']}")
        else:
            out += [f"Differences against {code(against['run_id'])}:", "",
                    md_table(["field", s["run"]["run_id"], against["run_id"]],
                             [(code(d['key']), code(fmt_value(d['this'])), code(fmt_value(d['other'])))
                              for d in against["diff"]]), ""]
    named = [(s["run"]["run_id"], s.get("interventions") or [])]
    if against:
        named.append((against["run_id"], against.get("interventions") or []))
    out += [f"{INTERVENTIONS_TITLE}:", "", md_table(["run", "step", "epoch", "action", "what"],
                                                      [(run, step, epoch, code(action) if action else "", what)
                                                       for run, step, epoch, action, what in intervention_rows(named)],
                                                      right=(1, 2)), ""]
    if s.get("spec_error"):
        out += [f"> spec.toml does not validate: {esc(s['spec_error'])}", ""]
    if s.get("spec_toml"):
        out += ["<details><summary>spec.toml</summary>", "", *code_block(compact_toml(s["spec_toml"]).strip(), "toml"), "",
                "</details>", ""]
    return out


def metrics_md(s: Summary) -> list[str]:
    rows = [(label, final, best, peak, at) for label, _name, final, best, peak, at in metric_rows(s)]
    if not rows:
        return [h2("metrics"), ""] + note(s["notes"].get("metrics", "no metrics recorded"))
    sel = selection_line(s)
    return [h2("metrics"), "", md_table(list(METRIC_COLUMNS), rows, right=(1, 2, 3, 4)), ""] + (
        [esc(sel + "."), ""] if sel else []) + [PEAK_NOTE.capitalize() + ".", ""]


def finishing_md(s: Summary) -> list[str]:
    out = [h2("finishing"), ""]
    if len(s["finishing"]) <= 1:
        out += note(s["notes"].get("finishing", "no finishing passes were run"))
    if s["finishing"]:
        out += [md_table(["pass", "model", "accuracy", "Δ accuracy", "loss / NLL", "Δ loss", "Δ against", "ECE", "detail"],
                         [(PASS_LABELS.get(r["pass"], r["pass"]), r.get("model") or "", fmt_pct_std(r["acc"], r.get("acc_std")),
                           fmt_delta_pct(r["delta_acc"]), fmt_num(r["loss"]) if r["loss"] is not None else "–",
                           fmt_delta(r["delta_loss"]), r.get("baseline") or "", fmt_pct(r["ece"]), r["detail"] or "")
                          for r in s["finishing"]], right=(2, 3, 4, 5, 7)), ""]
    tta = s["results"].get("tta")
    if tta and tta.get("views"):
        out += ["TTA views: " + ", ".join(f"{esc(k)} {fmt_pct(v)}" for k, v in tta["views"].items()), ""]
    return out


def training_md(s: Summary, markers: list[dict[str, Any]]) -> list[str]:
    tbl = curves(s, CURVES + curve_rows(n for n in sorted(s["series"]) if n.startswith("lr/")))
    out = [h2("training"), "", tbl or italic(s['notes'].get('metrics', 'no metrics recorded yet')), ""]
    if markers and tbl:
        out += ["Events on the timeline: " + "; ".join(f"{bold(m['n'])} step {m['step']:,} {esc(m['kind'])}"
                                                       for m in markers[:30]), ""]
    return out


def calibration_md(s: Summary) -> list[str]:
    cal = s["results"].get("calibrate")
    if not cal:
        return [h2("calibration"), ""] + note(s["notes"]["calibration"])
    b, a = cal.get("before") or {}, cal.get("after") or {}
    out = [h2("calibration"), "", f"Temperature **{fmt_num(cal.get('temperature'), 4)}**, fitted on the validation split "
           f"by {esc(calibration_method(cal))}.", "",
           md_table(["", "NLL", "ECE", "accuracy"],
                    [("before", fmt_num(b.get("nll")), fmt_pct(b.get("ece")), fmt_pct(b.get("acc"))),
                     ("after", fmt_num(a.get("nll")), fmt_pct(a.get("ece")), fmt_pct(a.get("acc")))],
                    right=(1, 2, 3)), ""]
    bins: dict[float, dict[str, Any]] = {}
    for label in ("before", "after"):
        for r in (cal.get("reliability") or {}).get(label) or []:
            if r.get("count", 1) and r.get("conf") is not None:
                bins.setdefault(round(r["conf"], 2), {})[label] = r
    if bins:
        def cells(v: dict[str, Any]) -> tuple[str, str]:
            return fmt_num((v or {}).get("acc"), 3), fmt_num((v or {}).get("count"))

        out += ["Reliability (accuracy per confidence bin):", "",
                md_table(["confidence", "acc before", "n before", "acc after", "n after"],
                         [(f"{c:.2f}", *cells(v.get("before")), *cells(v.get("after"))) for c, v in sorted(bins.items())],
                         right=(0, 1, 2, 3, 4)), ""]
    return out


def classes_md(s: Summary) -> list[str]:
    conf = s["results"].get("confusion")
    if not conf:
        return [h2("classes"), ""] + note(s["notes"]["classes"])
    out = [h2("classes"), "", f"Model: {esc(confusion_model(s))}.", ""]
    cnames, accs = per_class_acc(s)
    if accs:
        out += [md_table(["class", "accuracy", ""], [(n, fmt_pct(a, 1), "█" * round((a or 0) * 20))
                                                     for n, a in zip(cnames, accs)], right=(1,)), ""]
    matrix = conf.get("matrix") or []
    if matrix and len(matrix) <= 20:
        labels = class_names(s) or [str(i) for i in range(len(matrix))]
        out += ["Confusion matrix (rows: true, columns: predicted):", "",
                md_table(["true \\ pred"] + labels, [[labels[i] if i < len(labels) else str(i)] + [fmt_num(v) for v in row]
                                                      for i, row in enumerate(matrix)], right=range(1, len(matrix) + 1)), ""]
    return out


def difficulty_md(s: Summary) -> list[str]:
    if "difficulty" in s["notes"]:
        return [h2("difficulty"), ""] + note(s["notes"]["difficulty"])
    out = [h2("difficulty"), ""]
    tbl = curves(s, DIFFICULTY)
    if tbl:
        out += [tbl, ""]
    d = s["difficulty"]
    if d["hist"]:
        edges = d["hist_edges"]
        labels = [(f"{edges[i]:g}–{edges[i + 1]:g}" if i < len(d["hist"]) - 1 else f"{edges[i]:g}+") if edges else str(i)
                  for i in range(len(d["hist"]))]
        out += [f"Per-sample loss histogram at step {d.get('hist_step') or 0:,}:", "",
                md_table(["loss", "share", ""], [(lab, fmt_pct(v, 1), "█" * round((v or 0) * 40))
                                                 for lab, v in zip(labels, d["hist"])], right=(1,)), ""]
    return out


def throughput_md(s: Summary) -> list[str]:
    tbl = curves(s, THROUGHPUT)
    return [h2("throughput"), "", tbl or italic(s['notes'].get('throughput', 'no throughput measurements yet')), ""] + \
        system_md(s)


def system_md(s: Summary) -> list[str]:
    tbl, said = curves(s, system_curves(s)), system_note(s)
    return [esc(f"{SYSTEM_TITLE}:"), ""] + ([tbl, ""] if tbl else []) + ([italic(said), ""] if said else [])


def layers_md(s: Summary) -> list[str]:
    if not s["layers"]:
        return [h2("layers"), ""] + note(s["notes"].get("layers", "no per-layer instruments recorded"))
    cols = layer_columns(s["layers"])
    return [h2("layers"), "", md_table(["layer"] + [h for _, h in cols],
                                       [[r["name"]] + [layer_cell(r, k) for k, _ in cols] for r in s["layers"]],
                                       right=range(1, len(cols) + 1)), ""]


def hardest_md(s: Summary) -> list[str]:
    h = s["results"].get("hardest")
    if not h or not h.get("examples"):
        return [h2("hardest"), ""] + note(s["notes"].get("hardest", "no hardest-examples pass recorded"))
    cn = class_names(s)

    def name(i: Any) -> str:
        return cn[i] if isinstance(i, int) and 0 <= i < len(cn) else str(i)

    thumbs = sum(1 for e in h["examples"] if e.get("thumb"))
    seen = f" (the first {thumbs} as thumbnails in the HTML report)" if thumbs else ""
    return [h2("hardest"), "", f"Highest-loss test images at step {h.get('_step', 0):,}{seen}:", "",
            md_table(["index", "label", "predicted", "loss"],
                     [(e.get("index", ""), name(e.get("label")), name(e.get("pred")), fmt_num(e.get("loss"), 4))
                      for e in h["examples"][:20]], right=(0, 3)), ""]


def timeline_md(s: Summary, markers: list[dict[str, Any]]) -> list[str]:
    if not s["events"]:
        return [h2("timeline"), ""] + note("no events recorded")
    numbers = {m["id"]: m["n"] for m in markers}
    ev = s["events"][:200]
    out = [h2("timeline"), "", md_table(["#", "step", "time", "kind", "level", "message"],
                                        [(numbers.get(e["id"], ""), f"{e['step']:,}", fmt_clock(e["wall"]), e["kind"],
                                          e["level"], e["message"]) for e in ev], right=(0, 1)), ""]
    if len(s["events"]) > len(ev):
        out += [italic(f"{len(s['events']) - len(ev)} more events in report.json"), ""]
    return out
