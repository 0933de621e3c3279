"""`cockpit compare RUN_A RUN_B ...`: the spec fields that differ, results side by side, curves
overlaid (the first run is the baseline), in the terminal or as HTML / JSON files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cockpit.report.compare import compare_runs
from engine.atomic_write import write_text_atomic
from engine.store import Run, StoreError, resolve_run

from .complete import complete_run
from .common import RunsDirOpt, WidthOpt, fail, output_console


def compare(
    run_refs: list[str] = typer.Argument(..., metavar="RUN...", help="Two or more runs (id, unique part, 'last', or run dir).",
                                         autocompletion=complete_run),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="term (print here; the default), html, json, or all."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="File (one format) or folder for compare.html / compare.json (default: .)."),
    runs_dir: Optional[Path] = RunsDirOpt,
    width: int = WidthOpt,
) -> None:
    """Compare runs: the spec fields that differ, the results side by side, the curves overlaid."""
    from cockpit.report.render.compare import render_compare_html, render_compare_json, terminal_compare

    console = output_console(width)
    if len(run_refs) < 2:
        fail("compare needs at least two runs")
    c = compare_runs_or_fail(run_refs, runs_dir)
    f = (fmt or "term").strip().lower()
    if f in ("term", "terminal"):
        if out is not None:
            fail("--out needs a file format: --format html|json|all")
        console.print(terminal_compare(c, console.width))
        return
    formats = {"html": ["html"], "json": ["json"], "all": ["html", "json"]}.get(f)
    if formats is None:
        fail(f"unknown compare format {fmt!r}; choose from term, html, json, all")
    paths = target_paths(formats, out or Path("."))
    try:
        for kind, p in paths.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(p, render_compare_html(c) if kind == "html" else render_compare_json(c))
    except OSError as exc:
        fail(f"cannot write {exc.filename or out}: {exc.strerror or exc}", 1)
    for p in paths.values():
        console.print(f"wrote {p}", highlight=False, soft_wrap=True)


def compare_runs_or_fail(run_refs: list[str], runs_dir: Optional[Path]) -> dict:
    """The comparison of the named runs (each opened read-only), or exit 2 naming the problem."""
    runs: list[Run] = []
    try:
        for ref in run_refs:
            runs.append(resolve_run(ref, runs_dir, readonly=True))
    except StoreError as exc:
        fail(str(exc))
    seen = [r.path.resolve() for r in runs]
    if len(set(seen)) < len(seen):
        fail("the same run is named twice")
    try:
        return compare_runs(runs)
    finally:
        for r in runs:
            r.close()


def target_paths(formats: list[str], target: Path) -> dict[str, Path]:
    """A file for one format, sibling files for several, or compare.<ext> in a folder."""
    paths = {}
    for kind in formats:
        if target.suffix.lower() in (".html", ".json") and not target.is_dir():
            paths[kind] = target if len(formats) == 1 else target.with_suffix(f".{kind}")
        else:
            paths[kind] = target / f"compare.{kind}"
    return paths


COMMANDS = {"compare": compare}
