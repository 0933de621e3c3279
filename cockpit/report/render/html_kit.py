"""HTML building blocks for the report and the comparison: the page with its inline CSS, sections,
notes and tables (escaped text, or (html, class) cells)."""

from __future__ import annotations

from html import escape
from typing import Any, Iterable

CSS = """
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f3f4f6; --card: #ffffff; --accent: #2563eb; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0; font-weight: 650; letter-spacing: -0.01em; word-break: break-all; }
h2 { font-size: 16px; margin: 0 0 12px; font-weight: 650; }
h3 { font-size: 13px; margin: 14px 0 6px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin: 16px 0; }
.top { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.sub { color: var(--muted); margin-top: 4px; }
nav.toc { margin: 14px 0 0; display: flex; flex-wrap: wrap; gap: 6px; }
nav.toc a { font-size: 12px; color: var(--accent); text-decoration: none; padding: 2px 8px; border: 1px solid var(--line); border-radius: 6px; background: #f9fafb; }
.facts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 10px 18px; margin-top: 16px; }
.facts div { min-width: 0; }
.facts dt { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.facts dd { margin: 0; font-weight: 500; overflow-wrap: anywhere; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin-top: 16px; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: #f9fafb; }
.kpi .v { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi .l { font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.error { margin-top: 14px; padding: 10px 12px; border-radius: 8px; background: #fef2f2; border: 1px solid #fecaca; color: #991b1b; }
.error.warn { background: #fffbeb; border-color: #fde68a; color: #92400e; }
.note { color: var(--muted); font-style: italic; padding: 8px 12px; background: #f9fafb; border: 1px dashed var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #f9fafb; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.pos { color: #15803d; } td.neg { color: #b91c1c; }
tr.warning td { background: #fffbeb; } tr.error td { background: #fef2f2; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px; }
.toml { columns: 4 250px; column-gap: 8px; }
.toml pre { margin: 0 0 8px; break-inside: avoid; padding: 8px 10px; background: #f9fafb; border: 1px solid var(--line); border-radius: 6px; overflow-x: auto; }
.grid2 { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
figure { margin: 0; min-width: 0; }
figure svg { width: 100%; height: auto; display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 12px; color: var(--muted); margin: 0 0 10px; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.mk { display: inline-block; min-width: 18px; padding: 0 4px; border-radius: 3px; color: #fff; font-size: 10px; font-weight: 600; text-align: center; }
.scroll { max-height: 520px; overflow-y: auto; }
.thumbs { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 14px; }
.thumb { width: 96px; font-size: 12px; line-height: 1.35; }
.thumb img { display: block; image-rendering: pixelated; border: 1px solid var(--line); border-radius: 4px; margin-bottom: 4px; }
.thumb .neg { color: #b91c1c; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
@media (max-width: 800px) { .grid2 { grid-template-columns: 1fr; } .facts { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media print { body { background: #fff; } section.card { break-inside: avoid; border-color: #ddd; } nav.toc { display: none; } .scroll { max-height: none; } }
"""


def page(title: str, body: str, generated: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"generator\" content=\"Training Cockpit\">\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}\n"
        f"<footer>{escape(generated)}</footer>\n</main>\n</body>\n</html>\n"
    )


def section(sid: str, heading: str, inner: str) -> str:
    return f'<section class="card" id="{sid}">\n<h2>{escape(heading)}</h2>\n{inner}\n</section>'


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def table(headers: Iterable[str], rows: Iterable[Iterable[Any]], num: Iterable[int] = (), cls: str = "",
          row_classes: Iterable[str] | None = None) -> str:
    num = set(num)
    head = "".join(f'<th class="num">{escape(h)}</th>' if i in num else f"<th>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    rcs = list(row_classes) if row_classes is not None else None
    for r, row in enumerate(rows):
        cells = []
        for i, c in enumerate(row):
            if isinstance(c, tuple):  # (html, extra class)
                content, extra = c
            else:
                content, extra = escape(str(c)), ""
            klass = " ".join(x for x in ("num" if i in num else "", extra) if x)
            cells.append(f'<td class="{klass}">{content}</td>' if klass else f"<td>{content}</td>")
        rc = f' class="{rcs[r]}"' if rcs and rcs[r] else ""
        body.append(f"<tr{rc}>{''.join(cells)}</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(svg_markup: str) -> str:
    return f"<figure>{svg_markup}</figure>"


def signed(v: float | None, text: str, higher_is_better: bool = True) -> tuple[str, str]:
    if v is None or abs(v) < 1e-12:
        return escape(text), ""
    good = (v > 0) == higher_is_better
    return escape(text), "pos" if good else "neg"
