"""Vector charts as inline SVG strings: no JavaScript, no external fonts, no network.

Every chart is one `<svg class="chart" id="chart-...">` element with a <title>, axes with nice
ticks, a legend, and (for step charts) the run's events as vertical marker lines. The markup is
well-formed XML, so a test (or a script) can parse each chart on its own. This module holds the
shared drawing helpers and the bar, heatmap, reliability and timeline charts; line_chart.py the
line chart.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Callable, Sequence

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
AXIS = "#9ca3af"
PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
           "#4b5563", "#65a30d"]
# fixed colours for the usual curves, so every chart and report reads the same
SERIES_COLORS = {
    "train": "#2563eb", "test": "#ea580c", "val": "#16a34a", "swa": "#9333ea",
    "p10": "#93c5fd", "p50": "#2563eb", "p90": "#1e40af", "max": "#dc2626",
}
MARKER_COLORS = {
    "set_lr": "#2563eb", "paused": "#64748b", "continued": "#64748b", "resumed": "#64748b", "swa_started": "#9333ea",
    "swa_finished": "#9333ea", "checkpoint": "#0d9488", "resumed_run": "#0d9488",
    "stopped": "#ca8a04", "crashed": "#dc2626", "failed": "#dc2626",
}
LEVEL_COLORS = {"warning": "#d97706", "error": "#dc2626"}

Fmt = Callable[[float], str]


DENSE_ALARMS = 20  # more alarms than this on one chart: drawn as ticks, not lines


def is_alarm(event: dict[str, Any]) -> bool:
    return event.get("level") in ("warning", "error") and event["kind"] not in MARKER_COLORS


def marker_color(event: dict[str, Any]) -> str:
    return MARKER_COLORS.get(event["kind"]) or LEVEL_COLORS.get(event["level"], MUTED)


def _n(v: float) -> str:
    """A compact coordinate."""
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def _text(x: float, y: float, s: str, *, size: float = 11, anchor: str = "start", fill: str = MUTED,
          weight: str = "normal", extra: str = "") -> str:
    w = f' font-weight="{weight}"' if weight != "normal" else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"{w}{extra}>'
            f"{escape(s)}</text>")


def text_width(s: str, size: float = 11) -> float:
    """A rough width of a proportional sans string (enough for layout decisions)."""
    return sum(0.3 if c in "il.,:;|!'()[]/ " else 0.85 if c in "mwMW%" else 0.68 if c.isupper() else 0.58
               for c in s) * size


def svg_open(chart_id: str, title: str, width: float, height: float, css_class: str = "chart") -> str:
    return (f'<svg id="{escape(chart_id)}" class="{css_class}" viewBox="0 0 {_n(width)} {_n(height)}" '
            f'width="{_n(width)}" height="{_n(height)}" role="img" aria-label="{escape(title)}" '
            f'font-family="{FONT}" preserveAspectRatio="xMidYMid meet">'
            f"<title>{escape(title)}</title>")


# ------------------------------------------------------------------------------------ numbers


def nice_step(span: float, n: int) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10 * mag


def nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> tuple[float, float, list[float]]:
    """(domain lo, domain hi, ticks) with round tick values covering [lo, hi]."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, n)
    if integer:
        step = max(1.0, round(step))
    a = math.floor(lo / step + 1e-9) * step
    b = math.ceil(hi / step - 1e-9) * step
    ticks, k = [], 0
    while a + k * step <= b + step * 1e-6 and k < 50:
        ticks.append(round(a + k * step, 12))
        k += 1
    return a, b, ticks


def log_ticks(lo: float, hi: float) -> tuple[float, float, list[float]]:
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if b == a:
        b += 1
    ticks = [10.0 ** e for e in range(a, b + 1)]
    if b - a <= 2:
        ticks = sorted({t * m for t in ticks for m in (1, 2, 5) if 10.0 ** a <= t * m <= 10.0 ** b})
    return 10.0 ** a, 10.0 ** b, ticks


def fmt_num(v: float, step: float | None = None) -> str:
    """Axis numbers: 0.05, 1.2k, 3e-4; decimals follow the tick step."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a < 1e-3:
        return f"{v:.0e}".replace("e-0", "e-")
    if step is not None and step < 1:
        d = max(0, min(6, -math.floor(math.log10(step) + 1e-9)))
        if abs(step * 10 ** d - round(step * 10 ** d)) > 1e-6:
            d += 1
        return f"{v:.{d}f}"
    return f"{v:.4g}"


def tick_pct(v: float, step: float | None = None) -> str:
    d = 0 if step is None or step * 100 >= 1 - 1e-9 else 1
    return f"{v * 100:.{d}f}%"


# ------------------------------------------------------------------------------------ bar charts


def hbar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float | None], *,
               width: float = 560, fmt: Fmt = lambda v: f"{v:.1%}", vmax: float | None = None,
               color: str = PALETTE[0], highlight_below: float | None = None) -> str:
    """Horizontal bars with labels (≤ ~30 items); vertical columns for more."""
    n = len(labels)
    vals = [v if v is not None else 0.0 for v in values]
    top_v = vmax if vmax is not None else (max(vals) if vals else 1.0) or 1.0
    if n > 30:
        return column_chart(chart_id, title, labels, values, width=width, fmt=fmt, vmax=top_v, color=color)
    label_w = min(max((text_width(s, 11) for s in labels), default=40) + 14, 160)
    bar_h, gap, top = 16, 5, 34
    height = top + n * (bar_h + gap) + 26
    pw = width - label_w - 70
    out = [svg_open(chart_id, title, width, height), _text(12, 19, title, size=13, fill=INK, weight="600")]
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + frac * pw
        out.append(f'<line x1="{_n(x)}" y1="{top - 4}" x2="{_n(x)}" y2="{_n(top + n * (bar_h + gap))}" stroke="{GRID}"/>')
        out.append(_text(x, top + n * (bar_h + gap) + 14, fmt(frac * top_v), size=10, anchor="middle"))
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = top + i * (bar_h + gap)
        c = color
        if highlight_below is not None and v is not None and v < highlight_below:
            c = "#ea580c"
        w = max((v or 0.0) / top_v, 0) * pw
        out.append(_text(label_w - 8, y + bar_h - 4, lab, size=11, anchor="end", fill=INK))
        out.append(f'<rect x="{_n(label_w)}" y="{_n(y)}" width="{_n(w)}" height="{bar_h}" rx="2" fill="{c}">'
                   f"<title>{escape(lab)}: {escape(fmt(v) if v is not None else 'n/a')}</title></rect>")
        out.append(_text(label_w + w + 5, y + bar_h - 4, fmt(v) if v is not None else "n/a", size=10.5, fill=INK))
    out.append("</svg>")
    return "".join(out)


def column_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float | None], *,
                 width: float = 560, height: float = 240, fmt: Fmt = lambda v: f"{v:.1%}",
                 vmax: float | None = None, color: str = PALETTE[0], x_label: str = "") -> str:
    """Vertical columns; labels under the columns when they fit."""
    n = max(len(labels), 1)
    vals = [v if v is not None else 0.0 for v in values]
    top_v = vmax if vmax is not None else (max(vals) if vals else 1.0) or 1.0
    pad_l, pad_r, top, pad_b = 52, 14, 34, 40
    pw, ph = width - pad_l - pad_r, height - top - pad_b
    out = [svg_open(chart_id, title, width, height), _text(12, 19, title, size=13, fill=INK, weight="600")]
    _, _, ticks = nice_ticks(0, top_v, 4)
    ticks = [t for t in ticks if t <= top_v * 1.0001] or [0, top_v]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else None
    for t in ticks:
        y = top + ph - t / top_v * ph
        out.append(f'<line x1="{pad_l}" y1="{_n(y)}" x2="{_n(pad_l + pw)}" y2="{_n(y)}" stroke="{GRID}"/>')
        out.append(_text(pad_l - 6, y + 4, tick_pct(t, step) if fmt is tick_pct else fmt(t), size=10, anchor="end"))
    bw = pw / n
    show_labels = max((text_width(s, 10) for s in labels), default=0) <= bw - 2
    for i, (lab, v) in enumerate(zip(labels, values)):
        h = max((v or 0.0) / top_v, 0) * ph
        x = pad_l + i * bw
        out.append(f'<rect x="{_n(x + bw * 0.12)}" y="{_n(top + ph - h)}" width="{_n(bw * 0.76)}" height="{_n(h)}" '
                   f'rx="1.5" fill="{color}"><title>{escape(lab)}: {escape(fmt(v) if v is not None else "n/a")}</title></rect>')
        if show_labels:
            out.append(_text(x + bw / 2, top + ph + 14, lab, size=10, anchor="middle"))
    out.append(f'<line x1="{pad_l}" y1="{_n(top + ph)}" x2="{_n(pad_l + pw)}" y2="{_n(top + ph)}" stroke="{AXIS}"/>')
    if x_label:
        out.append(_text(pad_l + pw, height - 6, x_label, size=10.5, anchor="end"))
    out.append("</svg>")
    return "".join(out)


# ----------------------------------------------------------------------------------- heatmap


def _blend(frac: float, lo: tuple[int, int, int] = (247, 251, 255), hi: tuple[int, int, int] = (8, 48, 107)) -> str:
    f = min(max(frac, 0.0), 1.0) ** 0.7
    r, g, b = (round(a + (c - a) * f) for a, c in zip(lo, hi))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(chart_id: str, title: str, matrix: Sequence[Sequence[float]], classes: Sequence[str], *,
            width: float = 560) -> str:
    """Confusion matrix: rows true, columns predicted; colour = row share (recall), text = count."""
    n = len(matrix)
    labels = [str(c) for c in classes] if len(classes) == n else [str(i) for i in range(n)]
    label_w = min(max((text_width(s, 10.5) for s in labels), default=20) + 12, 110) if n <= 40 else 20
    top = 34 + (min(max((text_width(s, 10.5) for s in labels), default=20) * 0.72 + 14, 86) if n <= 40 else 14)
    cell = max(min((width - label_w - 30 - 18) / max(n, 1), 40), 3)
    grid = cell * n
    height = top + grid + 34
    out = [svg_open(chart_id, title, width, height), _text(12, 19, title, size=13, fill=INK, weight="600")]
    x0 = label_w + 18
    for i, row in enumerate(matrix):
        total = sum(v for v in row if v) or 0
        for j, v in enumerate(row):
            v = v or 0
            frac = v / total if total else 0.0
            fill = _blend(frac)
            x, y = x0 + j * cell, top + i * cell
            out.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell)}" height="{_n(cell)}" fill="{fill}" '
                       f'stroke="#ffffff" stroke-width="{1 if cell > 6 else 0}">'
                       f"<title>true {escape(labels[i])}, predicted {escape(labels[j])}: {v:g} ({frac:.1%} of row)</title></rect>")
            if cell >= 22 and v:
                txt = f"{v:g}" if v < 1000 else f"{v / 1000:.1f}k"
                out.append(_text(x + cell / 2, y + cell / 2 + 3.5, txt, size=min(10, cell / 2.8), anchor="middle",
                                 fill="#ffffff" if frac > 0.45 else INK))
        if n <= 40:
            out.append(_text(x0 - 6, top + i * cell + cell / 2 + 3.5, labels[i], size=10.5, anchor="end", fill=INK))
    if n <= 40:
        for j, lab in enumerate(labels):
            cx, cy = x0 + j * cell + cell / 2 + 3, top - 6
            out.append(f'<text x="{_n(cx)}" y="{_n(cy)}" font-size="10.5" fill="{INK}" '
                       f'transform="rotate(-45 {_n(cx)} {_n(cy)})">{escape(lab)}</text>')
    out.append(f'<rect x="{_n(x0)}" y="{_n(top)}" width="{_n(grid)}" height="{_n(grid)}" fill="none" stroke="{AXIS}"/>')
    out.append(_text(x0 + grid / 2, top + grid + 18, "predicted class", size=10.5, anchor="middle"))
    out.append(f'<text x="12" y="{_n(top + grid / 2)}" font-size="10.5" fill="{MUTED}" text-anchor="middle" '
               f'transform="rotate(-90 12 {_n(top + grid / 2)})">true class</text>')
    # colour key
    kx, ky = x0 + grid - 120, top + grid + 8
    for k in range(20):
        out.append(f'<rect x="{_n(kx + k * 6)}" y="{_n(ky)}" width="6" height="8" fill="{_blend(k / 19)}"/>')
    out.append(_text(kx - 4, ky + 8, "0%", size=9.5, anchor="end"))
    out.append(_text(kx + 124, ky + 8, "100% of row", size=9.5))
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------------- reliability


def reliability(chart_id: str, title: str, panels: Sequence[tuple[str, Sequence[dict[str, Any]]]], *,
                bins: int = 0, width: float = 560) -> str:
    """Reliability diagrams side by side: accuracy per confidence bin as bars, the gap to the diagonal shaded."""
    k = max(len(panels), 1)
    side = min((width - 20 - k * 56) / k, 240)
    top, height = 34, 34 + side + 46
    out = [svg_open(chart_id, title, width, height), _text(12, 19, title, size=13, fill=INK, weight="600")]
    for p, (label, rows) in enumerate(panels):
        x0 = 50 + p * (side + 56)
        nb = bins or len(rows) or 10
        out.append(f'<rect x="{_n(x0)}" y="{top}" width="{_n(side)}" height="{_n(side)}" fill="#ffffff" stroke="{AXIS}"/>')
        for t in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = top + side - t * side
            out.append(f'<line x1="{_n(x0)}" y1="{_n(y)}" x2="{_n(x0 + side)}" y2="{_n(y)}" stroke="{GRID}"/>')
            out.append(_text(x0 - 5, y + 4, f"{t:g}", size=10, anchor="end"))
            out.append(_text(x0 + t * side, top + side + 14, f"{t:g}", size=10, anchor="middle"))
        for r in rows:
            conf, acc, count = r.get("conf"), r.get("acc"), r.get("count", 1)
            if conf is None or acc is None or not count:
                continue
            if r.get("lower") is not None and r.get("upper") is not None:
                bx, bw = x0 + r["lower"] * side, (r["upper"] - r["lower"]) * side
            else:
                i = min(int(conf * nb), nb - 1)
                bx, bw = x0 + i / nb * side, side / nb
            ya, yc = top + side - acc * side, top + side - conf * side
            out.append(f'<rect x="{_n(bx + 0.5)}" y="{_n(ya)}" width="{_n(bw - 1)}" height="{_n(top + side - ya)}" '
                       f'fill="#2563eb" opacity="0.85"><title>confidence {conf:.3f}: accuracy {acc:.3f} '
                       f'({count:g} samples)</title></rect>')
            if ya - yc > 0.5:  # overconfident: the gap sits above the bar, shaded
                out.append(f'<rect x="{_n(bx + 0.5)}" y="{_n(yc)}" width="{_n(bw - 1)}" height="{_n(ya - yc)}" '
                           f'fill="#dc2626" fill-opacity="0.3"/>')
            elif yc - ya > 0.5:  # underconfident: the gap lies inside the bar, outlined
                out.append(f'<rect x="{_n(bx + 1)}" y="{_n(ya + 0.5)}" width="{_n(bw - 2)}" height="{_n(yc - ya - 0.5)}" '
                           f'fill="#ffffff" fill-opacity="0.35" stroke="#dc2626" stroke-width="1" stroke-dasharray="2 1.5"/>')
        out.append(f'<line x1="{_n(x0)}" y1="{_n(top + side)}" x2="{_n(x0 + side)}" y2="{top}" stroke="{INK}" '
                   f'stroke-width="1.2" stroke-dasharray="5 4"/>')
        out.append(_text(x0 + side / 2, top + side + 30, label, size=11.5, anchor="middle", fill=INK, weight="600"))
        out.append(f'<text x="{_n(x0 - 34)}" y="{_n(top + side / 2)}" font-size="10.5" fill="{MUTED}" text-anchor="middle" '
                   f'transform="rotate(-90 {_n(x0 - 34)} {_n(top + side / 2)})">accuracy</text>')
    out.append(_text(width - 12, height - 4, "x: confidence · bars: accuracy · red: gap to confidence · dashed: perfect calibration",
                     size=10, anchor="end"))
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------------ timeline


def timeline(chart_id: str, title: str, events: Sequence[dict[str, Any]], *, total: int, epoch_steps: int = 0,
             width: float = 1120, current: int | None = None, lanes: int = 3) -> str:
    """The run as a bar over steps (done part filled), epoch ticks, and numbered event markers above it."""
    pad_l, pad_r, lane_h = 20, 20, 18
    end = max(total, current or 0, max((e["step"] for e in events), default=0), 1)
    pw = width - pad_l - pad_r
    tx = lambda v: pad_l + v / end * pw  # noqa: E731
    alarms = [e for e in events if is_alarm(e)]
    dense = len(alarms) > DENSE_ALARMS
    placed = _lanes([e for e in events if not (dense and is_alarm(e))], tx, end, lanes)
    used = max((ln for _, ln, _ in placed), default=0) + 1
    top = 32
    bar_y = top + used * lane_h + 6
    out = [svg_open(chart_id, title, width, bar_y + 50), _text(12, 19, title, size=13, fill=INK, weight="600")]
    out.append(f'<rect x="{pad_l}" y="{bar_y}" width="{_n(pw)}" height="10" rx="5" fill="#e5e7eb"/>')
    if current is not None:
        out.append(f'<rect x="{pad_l}" y="{bar_y}" width="{_n(max(tx(min(current, end)) - pad_l, 0))}" height="10" '
                   f'rx="5" fill="#93c5fd"><title>step {current:,} of {end:,}</title></rect>')
    if epoch_steps and end / epoch_steps <= 2000:
        out += _epoch_ticks(tx, end, epoch_steps, bar_y)
    out.append(_text(pad_l, bar_y + 28, "0", size=9.5))
    out.append(_text(pad_l + pw, bar_y + 42, f"step {end:,}", size=9.5, anchor="end"))
    if dense:
        out.append(_text(pad_l, bar_y + 42, f"{len(alarms)} alarms: ticks under the bar (hover for each)", size=9.5))
        out += _alarm_ticks(alarms, tx, end, bar_y)
    for x, lane, ev in placed:
        color = marker_color(ev)
        y = top + (used - 1 - lane) * lane_h
        label = str(ev.get("n", ""))
        w = 10 + 5.5 * len(label)
        tip = escape(f"#{label} step {ev['step']}: {ev['kind']}: {ev.get('message', '')}")
        out.append(f'<g class="marker"><title>{tip}</title>'
                   f'<line x1="{_n(x)}" y1="{_n(y + 14)}" x2="{_n(x)}" y2="{bar_y + 10}" stroke="{color}" stroke-width="1.3"/>'
                   f'<rect x="{_n(x - w / 2)}" y="{_n(y)}" width="{_n(w)}" height="14" rx="3" fill="{color}"/>'
                   + _text(x, y + 10.5, label, size=9, anchor="middle", fill="#ffffff", weight="600")
                   + "</g>")
    out.append("</svg>")
    return "".join(out)


def _lanes(events: Sequence[dict[str, Any]], tx: Callable[[float], float], end: int,
           lanes: int) -> list[tuple[float, int, dict[str, Any]]]:
    """(x, lane, event) for each labelled event: the first lane with room, else the least crowded,
    so labels never overlap."""
    placed: list[tuple[float, int, dict[str, Any]]] = []
    lane_end = [-1e9] * lanes
    for ev in events:
        x = tx(min(max(ev["step"], 0), end))
        wlab = 10 + 5.5 * len(str(ev.get("n", "")))
        lane = next((k for k in range(lanes) if x - lane_end[k] >= wlab + 2), None)
        if lane is None:
            lane = min(range(lanes), key=lambda k: lane_end[k])
        lane_end[lane] = x
        placed.append((x, lane, ev))
    return placed


def _epoch_ticks(tx: Callable[[float], float], end: int, epoch_steps: int, bar_y: float) -> list[str]:
    """White ticks on the bar at epoch ends (at most ~20 of them labelled)."""
    out = []
    n_ep = end / epoch_steps
    every = max(1, math.ceil(n_ep / 20))
    k = 1
    while k * epoch_steps <= end:
        x = tx(k * epoch_steps)
        if n_ep <= 60 or k % every == 0:
            out.append(f'<line x1="{_n(x)}" y1="{bar_y}" x2="{_n(x)}" y2="{bar_y + 10}" stroke="#ffffff" stroke-width="1"/>')
        if k % every == 0:
            out.append(_text(x, bar_y + 28, f"ep {k}", size=9.5, anchor="middle"))
        k += 1
    return out


def _alarm_ticks(alarms: Sequence[dict[str, Any]], tx: Callable[[float], float], end: int, bar_y: float) -> list[str]:
    """Many alarms: one tick each under the bar (one per pixel column), with the alarm as its tooltip."""
    out = []
    seen: set[int] = set()
    for ev in alarms:
        x = tx(min(max(ev["step"], 0), end))
        if int(x) in seen:
            continue
        seen.add(int(x))
        tip = escape(f"#{ev.get('n', '')} step {ev['step']}: {ev['kind']}: {ev.get('message', '')}")
        out.append(f'<line class="alarm-tick" x1="{_n(x)}" y1="{bar_y + 11}" x2="{_n(x)}" y2="{bar_y + 17}" '
                   f'stroke="{marker_color(ev)}" stroke-width="1.2"><title>{tip}</title></line>')
    return out
