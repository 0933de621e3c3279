"""The line chart: curves over steps (or epochs) with a legend, nice ticks, an optional log y axis,
and the run's events as numbered vertical markers. Inline SVG, well-formed XML."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Iterable, Sequence

from .svg import (AXIS, DENSE_ALARMS, GRID, INK, PALETTE, _n, _text, fmt_num, tick_pct, is_alarm, log_ticks,
                  marker_color, nice_ticks, svg_open, text_width)

PAD_L, PAD_R, PAD_B = 58, 18, 42

Legend = list[list[tuple[float, tuple[str, str, Any]]]]  # rows of (x, (label, color, dash))


@dataclass(frozen=True)
class Plot:
    """Where the plot area lies and how data maps onto it."""

    top: float
    pw: float
    ph: float
    xa: float
    xb: float
    xt: list[float]
    ya: float
    yb: float
    yt: list[float]
    log_y: bool

    def tx(self, v: float) -> float:
        return PAD_L + (v - self.xa) / (self.xb - self.xa) * self.pw

    def ty(self, v: float) -> float:
        if self.log_y:
            lo = math.log10(self.ya)
            return self.top + self.ph - (math.log10(max(v, self.ya)) - lo) / (math.log10(self.yb) - lo) * self.ph
        return self.top + self.ph - (v - self.ya) / (self.yb - self.ya) * self.ph


def line_chart(chart_id: str, title: str, series: Sequence[dict[str, Any]], *,
               markers: Iterable[dict[str, Any]] = (), x_label: str = "step", y_fmt: str = "num",
               log_y: bool = False, y_range: tuple[float | None, float | None] = (None, None),
               width: float = 560, height: float = 300, x_range: tuple[float, float] | None = None,
               epoch_steps: int = 0) -> str:
    """Lines over a shared x axis. series: {name, x, y, color?, dash?, dots?, width?}; y may hold None (gaps).

    markers: events {step, kind, level, message, n} drawn as vertical lines labelled with their number n.
    """
    pts = [(x, y) for s in series for x, y in zip(s["x"], s["y"]) if y is not None]
    if log_y:
        pos = [y for _, y in pts if y > 0]
        log_y = bool(pos) and max(pos) / min(pos) > 20
    rows = _legend_rows(series, y_fmt, width)  # the legend sets the plot's top
    top = 30 + 16 * len(rows) + 6
    pw, ph = width - PAD_L - PAD_R, height - top - PAD_B
    out = [svg_open(chart_id, title, width, height), _text(12, 19, title, size=13, fill=INK, weight="600")]
    out += _legend_svg(rows)
    if not pts:
        out.append(f'<rect x="{PAD_L}" y="{top}" width="{_n(pw)}" height="{_n(ph)}" fill="#f9fafb" stroke="{GRID}"/>')
        out.append(_text(PAD_L + pw / 2, top + ph / 2, "no data yet", size=12, anchor="middle"))
        return "".join(out) + "</svg>"
    plot = _plot(pts, top, pw, ph, x_label, x_range, y_fmt, y_range, log_y)
    out += _axes_svg(plot, height, x_label, tick_pct if y_fmt == "pct" else fmt_num, epoch_steps)
    out += _markers_svg(plot, markers)
    out += _series_svg(plot, chart_id, series)
    return "".join(out) + "</svg>"


def _legend_rows(series: Sequence[dict[str, Any]], y_fmt: str, width: float) -> Legend:
    """Legend entries (name and last value), wrapped into rows that fit the chart's width."""
    rows: Legend = [[]]
    x_cursor = PAD_L
    for i, s in enumerate(series):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        last = next((y for y in reversed(s["y"]) if y is not None), None)
        label = s["name"] + (f"  {tick_pct(last, 0.001) if y_fmt == 'pct' else fmt_num(last)}" if last is not None else "")
        w = 26 + text_width(label, 11) + 18
        if x_cursor + w > width - PAD_R and rows[-1]:
            rows.append([])
            x_cursor = PAD_L
        rows[-1].append((x_cursor, (label, color, s.get("dash"))))
        x_cursor += w
    return rows


def _legend_svg(rows: Legend) -> list[str]:
    out = []
    for r, row in enumerate(rows):
        y = 36 + 16 * r
        for x, (label, color, dash) in row:
            d = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<line x1="{_n(x)}" y1="{y - 4}" x2="{_n(x + 20)}" y2="{y - 4}" stroke="{color}" stroke-width="2.5"{d}/>')
            out.append(_text(x + 26, y, label, size=11, fill=INK))
    return out


def _plot(pts: list[tuple[float, float]], top: float, pw: float, ph: float, x_label: str,
          x_range: tuple[float, float] | None, y_fmt: str, y_range: tuple[float | None, float | None],
          log_y: bool) -> Plot:
    """The axes' ranges and ticks for the points (a requested x range is kept exact)."""
    xs = [x for x, _ in pts]
    x0, x1 = x_range if x_range else (min(xs), max(xs))
    if x1 <= x0:
        x1 = x0 + 1
    xa, xb, xt = nice_ticks(x0, x1, 6, integer=(x_label == "step"))
    if x_range:  # keep the requested range exact (e.g. 0..total_steps)
        xa, xb = x0, x1
        xt = [t for t in xt if x0 <= t <= x1]
    ys = [y for _, y in pts]
    lo = y_range[0] if y_range[0] is not None else min(ys)
    hi = y_range[1] if y_range[1] is not None else max(ys)
    if log_y:
        pos = [y for y in ys if y > 0]
        ya, yb, yt = log_ticks(min(pos), max(pos))
    else:
        ya, yb, yt = nice_ticks(min(lo, min(ys)), max(hi, max(ys)), 5)
        if y_fmt == "pct":
            ya, yb = max(ya, min(0.0, lo)), min(yb, max(1.0, hi))
            yt = [t for t in yt if ya - 1e-9 <= t <= yb + 1e-9]
    return Plot(top, pw, ph, xa, xb, xt, ya, yb, yt, log_y)


def _axes_svg(p: Plot, height: float, x_label: str, fmt: Callable[[float, float | None], str],
              epoch_steps: int) -> list[str]:
    """The plot's background, epoch bands, grid lines, tick labels and axis lines."""
    top, ph, pw = p.top, p.ph, p.pw
    out = [f'<rect x="{PAD_L}" y="{top}" width="{_n(pw)}" height="{_n(ph)}" fill="#ffffff"/>']
    if epoch_steps and x_label == "step" and (p.xb - p.xa) / epoch_steps <= 60:
        e = math.ceil(p.xa / epoch_steps) * epoch_steps
        while e <= p.xb:
            if e > p.xa:
                out.append(f'<line x1="{_n(p.tx(e))}" y1="{top}" x2="{_n(p.tx(e))}" y2="{_n(top + ph)}" stroke="#f3f4f6"/>')
            e += epoch_steps
    ystep = (p.yt[1] - p.yt[0]) if len(p.yt) > 1 else None
    xstep = (p.xt[1] - p.xt[0]) if len(p.xt) > 1 else None
    for t in p.yt:
        y = p.ty(t)
        out.append(f'<line x1="{PAD_L}" y1="{_n(y)}" x2="{_n(PAD_L + pw)}" y2="{_n(y)}" stroke="{GRID}"/>')
        out.append(_text(PAD_L - 6, y + 4, fmt(t, ystep) if not p.log_y else fmt_num(t), size=10.5, anchor="end"))
    for t in p.xt:
        x = p.tx(t)
        out.append(f'<line x1="{_n(x)}" y1="{_n(top + ph)}" x2="{_n(x)}" y2="{_n(top + ph + 4)}" stroke="{AXIS}"/>')
        out.append(_text(x, top + ph + 16, fmt_num(t, xstep), size=10.5, anchor="middle"))
    out.append(f'<line x1="{PAD_L}" y1="{_n(top + ph)}" x2="{_n(PAD_L + pw)}" y2="{_n(top + ph)}" stroke="{AXIS}"/>')
    out.append(f'<line x1="{PAD_L}" y1="{top}" x2="{PAD_L}" y2="{_n(top + ph)}" stroke="{AXIS}"/>')
    out.append(_text(PAD_L + pw, height - 8, x_label + (" (log y)" if p.log_y else ""), size=10.5, anchor="end"))
    return out


def _markers_svg(p: Plot, markers: Iterable[dict[str, Any]]) -> list[str]:
    """Events under the curves: steering actions as labelled lines; alarms too, unless there are so
    many that they would bury the curves: then a tick each along the top edge."""
    marks = [m for m in markers if m.get("step") is not None and p.xa <= m["step"] <= p.xb]
    dense = sum(1 for m in marks if is_alarm(m)) > DENSE_ALARMS
    out: list[str] = []
    last_label_x = -1e9
    ticks_done: set[int] = set()
    for m in marks:
        x, color = p.tx(m["step"]), marker_color(m)
        tip = escape(f"#{m.get('n', '')} step {m['step']}: {m['kind']}: {m.get('message', '')}")
        if dense and is_alarm(m):
            if int(x) not in ticks_done:
                ticks_done.add(int(x))
                out.append(f'<line class="alarm-tick" x1="{_n(x)}" y1="{p.top}" x2="{_n(x)}" y2="{p.top + 7}" '
                           f'stroke="{color}" stroke-width="1.2"><title>{tip}</title></line>')
            continue
        out.append(f'<g class="marker"><title>{tip}</title>'
                   f'<line x1="{_n(x)}" y1="{p.top}" x2="{_n(x)}" y2="{_n(p.top + p.ph)}" stroke="{color}" '
                   f'stroke-width="1.2" stroke-dasharray="4 3" opacity="0.85"/>')
        if m.get("n") is not None and x - last_label_x >= 8 + 6 * len(str(m["n"])):
            w = 8 + 5.5 * len(str(m["n"]))
            out.append(f'<rect x="{_n(x - w / 2)}" y="{p.top + 2}" width="{_n(w)}" height="13" rx="3" fill="{color}"/>')
            out.append(_text(x, p.top + 12, str(m["n"]), size=9, anchor="middle", fill="#ffffff", weight="600"))
            last_label_x = x
        out.append("</g>")
    return out


def _series_svg(p: Plot, chart_id: str, series: Sequence[dict[str, Any]]) -> list[str]:
    """Each series as path segments (gaps where y is missing), clipped to the plot; dots when few."""
    cid = escape(chart_id)
    out = [f'<clipPath id="{cid}-clip"><rect x="{PAD_L}" y="{p.top - 3}" width="{_n(p.pw)}" height="{_n(p.ph + 6)}"/>'
           f'</clipPath>', f'<g clip-path="url(#{cid}-clip)">']
    for i, s in enumerate(series):
        color = s.get("color") or PALETTE[i % len(PALETTE)]
        segs: list[list[tuple[float, float]]] = [[]]
        for x, y in zip(s["x"], s["y"]):
            if y is None or (p.log_y and y <= 0):
                if segs[-1]:
                    segs.append([])
                continue
            segs[-1].append((p.tx(x), p.ty(y)))
        dash = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
        out.append(f'<g class="series" data-name="{escape(s["name"])}"><title>{escape(s["name"])}</title>')
        for seg in segs:
            if len(seg) >= 2:
                d = "M" + " L".join(f"{_n(a)},{_n(b)}" for a, b in seg)
                out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{s.get("width", 1.8)}" '
                           f'stroke-linejoin="round" stroke-linecap="round"{dash}/>')
        n_pts = sum(len(seg) for seg in segs)
        if s.get("dots") or n_pts <= 40:
            out += [f'<circle cx="{_n(a)}" cy="{_n(b)}" r="{2.6 if n_pts > 1 else 4}" fill="{color}" '
                    f'stroke="#ffffff" stroke-width="0.8"/>' for seg in segs for a, b in seg]
        out.append("</g>")
    return out + ["</g>"]
