"""`cockpit sweep`: run a sweep file as an Optuna study, add workers to it, resume it, show it.

    cockpit sweep FILE|NAME [--parallel N] [--storage URL]    (the same as `sweep run`)
    cockpit sweep create FILE                                  queue the trials, run nothing
    cockpit sweep join NAME [--storage URL] [--parallel N]     one more worker on the same study
    cockpit sweep resume NAME                                  after Ctrl+C: the unfinished trials again
    cockpit sweep status NAME [--json]                         trials by state and the results table
    cockpit sweep report NAME [--format html|md|json|all]      the sweep report

Exit codes as for `cockpit run`: 2 for a bad sweep file (file:line:col) or storage, 130 on Ctrl+C
(143 on SIGTERM: the live trials are stopped cleanly either way).
Optuna is imported by the commands that need it, not at start-up.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.table import Table
from typer.core import TyperGroup

from cockpit.core.presets import locate, missing_preset
from cockpit.core.sweeps import TrialLauncher, plan_slots
from engine.contracts import UsageError
from engine.atomic_write import write_text_atomic
from engine.sweep.secrets import redact
from engine.sweep.table import SWEEP_JSON, SweepTable, sweep_table

from .complete import complete_sweep
from .common import RunsDirOpt, console, err, preset_file, runs_dir_or_default
from .common import fail as _common_fail


class _SweepGroup(TyperGroup):
    """`cockpit sweep FILE` is `cockpit sweep run FILE`."""

    def resolve_command(self, ctx, args):  # type: ignore[override]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_SweepGroup, help="Sweeps: many runs of one preset across configurations and seeds, on Optuna. "
                  "`cockpit sweep FILE` is `cockpit sweep run FILE`.", add_completion=False, no_args_is_help=True,
                  rich_markup_mode=None)

STORAGE_ENV = "COCKPIT_SWEEP_STORAGE"  # a database URL with its password, kept off the command line (ps, history)
StorageOpt = typer.Option("", "--storage", metavar="URL", envvar=STORAGE_ENV, help="Optuna storage: a journal file "
                          "path or a database URL (postgresql://...). Default: $COCKPIT_SWEEP_STORAGE, else "
                          "runs/sweeps/NAME/journal.log. Its password is never printed or stored.", show_default=False)
ParallelOpt = typer.Option(1, "--parallel", "-j", min=1, help="Trials at once on this machine: one per GPU, "
                           "or the CPU threads split between them.")
MaxOpt = typer.Option(None, "--max-trials", min=1, help="Stop this worker after starting this many trials.")
NameArg = typer.Argument(..., metavar="NAME", help="The sweep's name (its study's name).")


def fail(message: str, code: int = 2) -> NoReturn:
    """Exit 2 with the message as written (common.fail escapes it: sweep messages name [[variant]], [grid]),
    any storage URL in it with its password left out."""
    _common_fail(redact(message), code)


def resume_hint(name: str, storage: str) -> str:
    """How to continue a sweep, never with the storage's password: a URL from $COCKPIT_SWEEP_STORAGE
    is left to it; one typed on the command line is shown with *** where the password goes."""
    if not storage or storage == os.environ.get(STORAGE_ENV):
        return f"cockpit sweep resume {name}"
    shown = redact(storage)
    tail = f" (put the password back where *** is, or set {STORAGE_ENV})" if shown != storage else ""
    return f"cockpit sweep resume {name} --storage {shown}{tail}"



def _base_preset(ref: str) -> Path:
    """A sweep's preset, found as `cockpit run` finds one; a missing one is named with the closest names."""
    from engine.spec import SpecError

    path = locate(ref)[0]
    try:
        missing = not path.exists()
    except OSError:
        missing = False
    if missing:
        raise SpecError([(ref, missing_preset(ref))], ref)
    return path


def _open(name: str, storage: str, runs_dir: Path):
    from engine.sweep.common import JOURNAL, sweep_dir
    from engine.sweep.study import Study, open_storage

    journal = sweep_dir(runs_dir, name) / JOURNAL
    if not storage and not journal.is_file():  # opening a journal that is not there would make one
        fail(f"no sweep {name!r} in {runs_dir} (no {journal}); a sweep in a database needs --storage URL")
    try:
        return Study.load(name, open_storage(storage or None, runs_dir, name))
    except UsageError as exc:
        fail(str(exc))


def _save_definition(study, runs_dir: Path) -> Path:
    from engine.sweep.config import sweep_json

    folder = runs_dir / "sweeps" / study.sweep.name
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / SWEEP_JSON, sweep_json(study.sweep, study.presets))
    return folder


def _work(study, runs_dir: Path, storage: str, parallel: int, max_trials: Optional[int]) -> None:
    """Run trials until none is left; Ctrl+C stops them cleanly and exits 130."""
    from engine.sweep.runner import Runner

    folder = _save_definition(study, runs_dir)
    runner = Runner(study, TrialLauncher(runs_dir), plan_slots(parallel), storage_url=storage,
                    say=lambda m: console.print(m, highlight=False), max_trials=max_trials, ledger=folder)
    code = {"exit": 130}

    def on_sigterm(_signum, _frame) -> None:  # a scheduler's SIGTERM stops the trials as Ctrl+C does
        code["exit"] = 143
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        runner.run()
    except KeyboardInterrupt:
        err.print(f"sweep interrupted; continue it with: {resume_hint(study.sweep.name, storage)}",
                  style="yellow", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code["exit"])
    except Exception as exc:
        from engine.sweep.study import storage_failure

        problem = storage_failure(study, exc, storage)
        if problem is None:
            raise
        fail(f"{problem}; the live trials go on, and `{resume_hint(study.sweep.name, storage)}` takes them up again",
             code=1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _finish(study, runs_dir, folder)


def _finish(study, runs_dir: Path, folder: Path) -> None:
    """The ensembles (once every member has finished), the table, and the report."""
    if study.sweep.ensemble:
        from engine.sweep.ensembles import evaluate_ensembles

        for line in evaluate_ensembles(study.sweep, runs_dir):
            console.print(line, highlight=False)
    table = sweep_table(runs_dir, study.sweep.name, study.sweep)
    print_table(table)
    importance = _importance(study)
    from cockpit.report.sweep import write_sweep_report

    paths = write_sweep_report(table, folder, ["html", "md", "json"], importance)
    console.print(f"report: {paths[0]}")


def _importance(study) -> dict[str, float]:
    if study.sweep.kind != "search":
        return {}
    from engine.sweep.study import importances

    return importances(study)


def print_table(table: SweepTable) -> None:
    from cockpit.report.sweep import ENSEMBLE_HEADERS, ENSEMBLE_NOTE, STD_NOTE, cells, ensemble_cells, title

    headers, rows = cells(table)
    t = Table(title=title(table), header_style="bold", title_justify="left", caption=STD_NOTE,
              caption_justify="left")
    for i, h in enumerate(headers):  # the configuration, its accuracy and best seed never wrap
        t.add_column(h, justify="right" if i in (1, 2, 4, 5, 6) else "left", no_wrap=i in (0, 1, 3))
    for row in rows:
        t.add_row(*row)
    console.print(t)
    if table.ensembles:
        e = Table(header_style="bold", caption=ENSEMBLE_NOTE, caption_justify="left")
        for i, h in enumerate(ENSEMBLE_HEADERS):  # the name and the accuracies never wrap
            e.add_column(h, justify="right" if i > 2 else "left", no_wrap=i in (0, 3, 5))
        for row in ensemble_cells(table):
            e.add_row(*row)
        console.print(e)


@app.command("run")
def run_command(sweep_file: str = typer.Argument(..., metavar="FILE", help="Sweep file, or a name in presets/sweeps/.",
                                                 autocompletion=complete_sweep),
                storage: str = StorageOpt, parallel: int = ParallelOpt, max_trials: Optional[int] = MaxOpt,
                runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Check a sweep file, create its study and run its trials (exit 2 on any problem, before anything runs)."""
    runs = runs_dir_or_default(runs_dir)
    study = _create(sweep_file, storage, runs)
    _work(study, runs, storage, parallel, max_trials)


@app.command("create")
def create_command(sweep_file: str = typer.Argument(..., metavar="FILE"), storage: str = StorageOpt,
                   runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Check a sweep file and queue its trials; workers start with `cockpit sweep join NAME`."""
    runs = runs_dir_or_default(runs_dir)
    study = _create(sweep_file, storage, runs)
    _save_definition(study, runs)
    console.print(f"sweep {study.sweep.name}: {sum(study.counts().values())} trial(s) queued")


def _create(sweep_file: str, storage: str, runs: Path):
    from engine.sweep.config import load_sweep
    from engine.sweep.study import Study, open_storage

    try:
        sweep, presets = load_sweep(preset_file(sweep_file, "sweeps"), _base_preset)
        return Study.create(sweep, presets, open_storage(storage or None, runs, sweep.name))
    except UsageError as exc:
        fail(str(exc))


@app.command("join")
def join_command(name: str = NameArg, storage: str = StorageOpt, parallel: int = ParallelOpt,
                 max_trials: Optional[int] = MaxOpt, runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Add a worker (this process, on this machine) to a sweep; it takes trials no other worker has."""
    runs = runs_dir_or_default(runs_dir)
    _work(_open(name, storage, runs), runs, storage, parallel, max_trials)


@app.command("resume")
def resume_command(name: str = NameArg, storage: str = StorageOpt, parallel: int = ParallelOpt,
                   runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Continue an interrupted sweep: its unfinished trials continue their runs; finished ones are kept."""
    runs = runs_dir_or_default(runs_dir)
    study = _open(name, storage, runs)
    n = study.requeue_interrupted()
    console.print(f"sweep {name}: {n} interrupted trial(s) queued again")
    _work(study, runs, storage, parallel, None)


@app.command("status")
def status_command(name: str = NameArg, storage: str = StorageOpt, as_json: bool = typer.Option(False, "--json"),
                   runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """The study's trials by state and the results table from this machine's runs."""
    runs = runs_dir_or_default(runs_dir)
    study = _open(name, storage, runs)
    table = sweep_table(runs, name, study.sweep)
    counts = study.counts()
    if as_json:
        console.print_json(json.dumps({"study": counts, "table": table.to_dict()}, default=str))
        return
    console.print(f"study {name}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    print_table(table)


@app.command("report")
def report_command(name: str = NameArg, fmt: str = typer.Option("all", "--format", "-f", help="html, md, json, all, "
                                                                "or term (print the table here)."),
                   storage: str = StorageOpt, runs_dir: Optional[Path] = RunsDirOpt) -> None:
    """Write the sweep report (runs/sweeps/NAME/report.*) from the trials' run stores."""
    report_sweep(name, fmt, runs_dir_or_default(runs_dir), storage)


def is_sweep(name: str, runs_dir: Path) -> bool:
    """Whether runs_dir holds a sweep of that name (`cockpit report NAME` reports on it)."""
    return "/" not in name and (runs_dir / "sweeps" / name / SWEEP_JSON).is_file()


def _report_importance(name: str, storage: str, runs: Path) -> dict[str, float]:
    """A search's parameter importances from its study; none (and a note why) where the study cannot
    be opened: the report reads the runs, and a damaged journal costs it only this section."""
    from engine.sweep.study import Study, open_storage

    try:
        return _importance(Study.load(name, open_storage(storage or None, runs, name)))
    except UsageError as exc:
        err.print(f"parameter importances left out: {redact(str(exc), storage)}", markup=False, highlight=False,
                  soft_wrap=True)
        return {}


def report_sweep(name: str, fmt: str, runs: Path, storage: str = "") -> None:
    """The table in the terminal (fmt term), or report.<fmt> files beside the sweep; reads only: the
    study is opened for importances only where it exists (its journal here, or --storage)."""
    from cockpit.report.sweep import SWEEP_FORMATS, write_sweep_report
    from engine.sweep.common import JOURNAL
    from engine.sweep.table import read_sweep

    sweep = read_sweep(runs, name)
    if sweep is None:
        fail(f"no sweep {name!r} in {runs} (looked for {runs / 'sweeps' / name / SWEEP_JSON})")
    table = sweep_table(runs, name, sweep)
    if fmt.strip().lower() in ("term", "terminal", ""):
        print_table(table)
        return
    formats = list(SWEEP_FORMATS) if fmt == "all" else [f.strip() for f in fmt.split(",")]
    has_study = storage or (runs / "sweeps" / name / JOURNAL).is_file()
    importance = _report_importance(name, storage, runs) if has_study and sweep.kind == "search" else {}
    try:
        paths = write_sweep_report(table, runs / "sweeps" / name, formats, importance)
    except (ValueError, OSError) as exc:
        fail(str(exc))
    for p in paths:
        console.print(f"report: {p}")
