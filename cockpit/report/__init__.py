"""Run reports: one summary of the run store, rendered as HTML, SVG, Markdown, JSON or in the terminal.

    summarize(run, against=None) -> dict          the JSON schema (docs/report-schema.md)
    write_report(run, fmt="all", out=None, against=None) -> list[Path]
    render_html / render_markdown / render_json / render_svg(summary) -> str
    terminal_report(summary) -> Rich renderable

Made from the store alone (run.db + spec.toml): no torch, works for finished, stopped, failed,
crashed and running runs. `report_command` is the Typer command for `cockpit report`.
"""

from __future__ import annotations

from typing import Any

from .export import FORMATS, render_json, report_command, write_report
from .summary import SCHEMA, SCHEMA_VERSION, summarize

# the renderers load on first use (the CLI and TUI import this package; most runs never render)
_LAZY = {
    "CHARTS": "html", "SECTIONS": "html", "render_html": "html",
    "render_markdown": "markdown", "render_svg": "term", "terminal_report": "term",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHARTS", "FORMATS", "SCHEMA", "SCHEMA_VERSION", "SECTIONS",
    "render_html", "render_json", "render_markdown", "render_svg", "report_command", "summarize",
    "terminal_report", "write_report",
]
