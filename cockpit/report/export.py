"""write_report: each format rendered from one summary, written atomically (by default into the run dir)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from engine.atomic_write import write_text_atomic
from engine.store import Run

from .schema import Summary
from .summary import summarize

FORMATS = ("html", "svg", "md", "json")
SUFFIX = {"html": ".html", "svg": ".svg", "md": ".md", "json": ".json"}


def render_json(summary: Summary) -> str:
    return json.dumps(summary, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def render(summary: Summary, fmt: str) -> str:
    if fmt == "html":
        from .render.html import render_html

        return render_html(summary)
    if fmt == "svg":
        from .render.figure import render_svg

        return render_svg(summary)
    if fmt == "md":
        from .render.md import render_markdown

        return render_markdown(summary)
    if fmt == "json":
        return render_json(summary)
    raise ValueError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)} or all")


def parse_formats(fmt: str | Iterable[str]) -> list[str]:
    items = [fmt] if isinstance(fmt, str) else list(fmt)
    out: list[str] = []
    for item in items:
        for f in str(item).replace(" ", "").split(","):
            f = {"markdown": "md", "htm": "html"}.get(f.lower(), f.lower())
            if f == "all":
                out += [x for x in FORMATS if x not in out]
            elif f in FORMATS:
                if f not in out:
                    out.append(f)
            elif f:
                raise ValueError(f"unknown report format {f!r}; choose from {', '.join(FORMATS)}, all (or term)")
    if not out:
        raise ValueError("no report format given")
    return out


def target_paths(run: Run, formats: list[str], out: Path | None) -> dict[str, Path]:
    """Where each format goes: out/report.<ext> for a folder (default: the run dir), or out itself for one file."""
    if out is None:
        return {f: run.path / f"report{SUFFIX[f]}" for f in formats}
    out = Path(out)
    known = out.suffix.lower() in SUFFIX.values()
    if known and not out.is_dir():
        if len(formats) == 1:
            return {formats[0]: out}
        return {f: out.with_suffix(SUFFIX[f]) for f in formats}
    return {f: out / f"report{SUFFIX[f]}" for f in formats}


def write_report(run: Run, fmt: str | Iterable[str] = "all", out: Path | str | None = None,
                 against: Run | None = None, summary: dict[str, Any] | None = None) -> list[Path]:
    """Write the report in each format (html, svg, md, json or all); returns the paths written.

    Default place: the run dir (report.html, report.svg, report.md, report.json). Each file is
    written atomically. Works for any run state, from the store alone.
    """
    formats = parse_formats(fmt)
    paths = target_paths(run, formats, Path(out) if out is not None else None)
    summary = summary if summary is not None else summarize(run, against=against)
    written = []
    for f, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_text_atomic(path, render(summary, f)))
    return written
