"""`cockpit report`: a run's report in the terminal or as files, from the store alone (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cockpit.report.export import parse_formats, write_report
from cockpit.report.summary import summarize
from engine.store import StoreError, resolve_run

from .complete import complete_run
from .common import RunsDirOpt, WidthOpt, fail, output_console


def report(
    run_ref: str = typer.Argument("last", metavar="RUN", help="Run id, unique part of one, 'last', or a run dir.",
                                  autocompletion=complete_run),
    fmt: Optional[str] = typer.Option(
        None, "--format", "-f",
        help="term (print here; the default), html, svg (the curves as one figure), md, json, all, or a comma list (html,json)."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Folder for report.<ext> (default: the run dir), or a file path for one format."),
    against: Optional[str] = typer.Option(None, "--against", metavar="OTHER_RUN",
                                          help="Also show the spec diff against this run."),
    runs_dir: Optional[Path] = RunsDirOpt,
    width: int = WidthOpt,
) -> None:
    """Report on a run: header, spec, metrics, finishing passes, charts, events (from the store alone).
    A sweep's name reports on the sweep (as `cockpit sweep report NAME`)."""
    from .sweep import is_sweep, report_sweep, runs_dir_or_default

    if is_sweep(run_ref, runs_dir_or_default(runs_dir)):
        return report_sweep(run_ref, fmt or "term", runs_dir_or_default(runs_dir))
    console = output_console(width)
    terminal = fmt is None or fmt.strip().lower() in ("term", "terminal", "")
    if terminal and out is not None:
        fail("--out needs a file format: --format html|svg|md|json|all")
    try:
        formats = [] if terminal else parse_formats(fmt)
    except ValueError as exc:
        fail(str(exc))
    try:
        run = resolve_run(run_ref, runs_dir, readonly=True)
        other = resolve_run(against, runs_dir, readonly=True) if against else None
    except StoreError as exc:
        fail(str(exc))
    try:
        summary = summarize(run, against=other)
        if terminal:
            from cockpit.report.render.term import terminal_report

            console.print(terminal_report(summary, console.width))
            return
        paths = write_report(run, formats, out, summary=summary)
    except OSError as exc:
        hint = "" if out else "; write it elsewhere with --out DIR"
        fail(f"cannot write the report: {exc.strerror or exc} ({getattr(exc, 'filename', '') or out or run.path}){hint}", 1)
    finally:
        run.close()
        if other is not None:
            other.close()
    for p in paths:
        console.print(f"wrote {p}", highlight=False, soft_wrap=True)


COMMANDS = {"report": report}
