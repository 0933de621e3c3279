"""Run reports: one summary of the run store, rendered as HTML, an SVG figure of its curves, Markdown, JSON
or in the terminal.

    summarize(run, against=None) -> dict          the JSON schema (docs/report-schema.md)
    write_report(run, fmt="all", out=None, against=None) -> list[Path]
    render_html / render_markdown / render_json / render_svg(summary) -> str
    terminal_report(summary) -> Rich renderable

Made from the store alone (run.db + spec.toml): no torch, works for finished, stopped, failed,
crashed and running runs. summary -> sections -> render/<format>; the `cockpit report` command is
in cockpit.cli.report.
"""

from __future__ import annotations

from typing import Any

from .export import FORMATS, render_json, write_report
from .sections import CHARTS, SECTIONS
from .summary import SCHEMA, SCHEMA_VERSION, summarize

# the renderers load on first use (the CLI and TUI import this package; most runs never render)
_LAZY = {"render_html": "html", "render_markdown": "md", "render_svg": "figure", "terminal_report": "term"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".render.{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHARTS", "FORMATS", "SCHEMA", "SCHEMA_VERSION", "SECTIONS",
    "render_html", "render_json", "render_markdown", "render_svg", "summarize", "terminal_report", "write_report",
]
