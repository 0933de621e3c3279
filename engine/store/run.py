"""Making runs and finding them: a run's id claimed atomically, its folder, its spec, and the
runs dir listed, resolved and reaped. What a run holds is read and written through its parts
(db, metrics, lifecycle, commands), which `Run` combines."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..atomic_write import describe
from . import layout
from .commands import RunCommands
from .db import SCHEMA, SCHEMA_VERSION, RunDB, StoreError, connect, damage
from .lifecycle import ACTIVE_STATES, RunLifecycle
from .metrics import RunSeries

if TYPE_CHECKING:  # the spec's models are loaded where a spec is read or written, not to list runs
    from ..spec import RunSpec

RUNS_ENV = "COCKPIT_RUNS"


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV) or "runs")


def new_run_id(name: str, runs_dir: Path, now: datetime | None = None) -> str:
    """The id a run would get now: 20261127-231900-sgd_cosine (with -2, -3 on a clash). Only a
    guess: `Run.create` claims its id atomically (engine/layout.py)."""
    return layout.free_id(layout.id_base(name, now), runs_dir)


class Run(RunCommands, RunLifecycle, RunSeries, RunDB):
    """One run directory and its database: made here (`create`), with its spec and paths; what it
    holds is read and written through its parts (engine/store/: metrics, meta and events, commands and
    results, the connection)."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        self.db_path = self.path / "run.db"
        if not self.db_path.is_file():
            raise StoreError(f"{self.path} is not a run directory (no run.db)")
        # readers that only read open run.db read-only, and so does anyone on a store they cannot write
        self.readonly = readonly or not layout.writable(self.path)
        self._con: sqlite3.Connection | None = None

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def create(cls, runs_dir: Path, spec: RunSpec, preset: str = "") -> Run:
        """Make runs/<id>/ with spec.toml and an initialised run.db; nothing is left on failure."""
        runs_dir = Path(runs_dir)
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create runs dir {runs_dir}: {exc.strerror or exc}") from None
        if not os.access(runs_dir, os.W_OK):
            raise StoreError(f"runs dir {runs_dir} is not writable")
        layout.clean_stale(runs_dir)  # what launches killed mid-creation left
        base = layout.id_base(spec.name)
        run_id, tmp = layout.free_id(base, runs_dir), None
        try:
            tmp = layout.scratch_dir(runs_dir, spec.name)
            cls._build(tmp, run_id, spec, preset)
            run_id = layout.place(tmp, runs_dir, run_id, base, lambda rid: cls._relabel(tmp, rid, spec))
        except (OSError, sqlite3.Error) as exc:
            if tmp is not None:
                _rmtree(tmp)
            raise StoreError(f"cannot create a run in {runs_dir}: {describe(exc, runs_dir)}") from None
        return cls(runs_dir / run_id)

    @staticmethod
    def _build(tmp: Path, run_id: str, spec: RunSpec, preset: str) -> None:
        """spec.toml, checkpoints/ and an initialised run.db in `tmp`."""
        from ..spec import dump_spec

        (tmp / "checkpoints").mkdir()
        (tmp / "spec.toml").write_text(dump_spec(spec, f"run {run_id}, resolved spec"), encoding="utf-8")
        con = connect(tmp / "run.db")
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(SCHEMA)
            meta = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "name": spec.name, "preset": preset,
                    "state": "created", "created": time.time(), "host": socket.gethostname()}
            con.execute("BEGIN")
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            con.execute("COMMIT")
        finally:
            con.close()

    @staticmethod
    def _relabel(tmp: Path, run_id: str, spec: RunSpec) -> None:
        """Give a run being made another id (another launch took the first one)."""
        from ..spec import dump_spec

        (tmp / "spec.toml").write_text(dump_spec(spec, f"run {run_id}, resolved spec"), encoding="utf-8")
        con = connect(tmp / "run.db")
        try:
            con.execute("UPDATE meta SET value = ? WHERE key = 'run_id'", (json.dumps(run_id),))
        finally:
            con.close()

    def check(self) -> Run:
        """This run, or StoreError naming run.db and what is wrong with it (damaged, empty, not a
        run store): one bad run.db is one error, never a traceback."""
        try:
            self.meta()
        except (sqlite3.Error, ValueError) as exc:
            self.close()
            raise StoreError(f"{self.db_path} {damage(exc, self.db_path)}") from None
        return self

    # -- the run's files -------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.path.name

    def spec(self) -> RunSpec:
        """The spec the run was made with; StoreError (one line) when spec.toml is gone or unreadable."""
        from ..spec import parse_spec_text, parse_toml

        p = self.path / "spec.toml"
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreError(f"{p} cannot be read ({why}): without the run's spec it cannot be resumed or "
                             "given a finishing pass") from None
        spec = parse_spec_text(text, str(p))
        if "seed" not in (parse_toml(text, str(p)).get("data") or {}):
            # written before data.seed existed: the split and synthetic images came from train.seed
            spec = spec.model_copy(update={"data": spec.data.model_copy(update={"seed": spec.train.seed})})
        return spec

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def log_path(self) -> Path:
        return self.path / "worker.log"


# ---------------------------------------------------------------------------------- lookups


def resolve_run(ref: str, runs_dir: Path | None = None, readonly: bool = False) -> Run:
    """A run by id (in runs_dir), by path, by any unique part of an id (`213842`), or 'last' for the
    newest. Several matches raise StoreError listing every candidate; so does a run.db that cannot
    be read (one line naming it and what is wrong)."""
    return _find_run(ref, Path(runs_dir or default_runs_dir()), readonly).check()


def _find_run(ref: str, runs_dir: Path, readonly: bool) -> Run:
    for c in (Path(ref), runs_dir / ref):
        try:
            if (c / "run.db").is_file():
                return Run(c, readonly)
        except OSError:  # a name too long for the filesystem names no run
            continue
    ids = list_run_dirs(runs_dir)
    if ref in ("last", "latest") and ids:
        return Run(ids[-1], readonly)
    matches = [p for p in ids if ref and ref in p.name]
    if len(matches) == 1:
        return Run(matches[0], readonly)
    if len(matches) > 1:
        shown = "\n".join(f"  {p.name}" for p in matches[:20])
        more = f"\n  ... and {len(matches) - 20} more" if len(matches) > 20 else ""
        raise StoreError(f"run {ref!r} matches {len(matches)} runs in {runs_dir}; give more of the id:\n{shown}{more}")
    shown = ref if len(ref) <= 80 else f"{ref[:60]}... ({len(ref)} characters)"
    raise StoreError(f"no run {shown!r} (looked for a run dir at {shown} and in {runs_dir})")


def list_run_dirs(runs_dir: Path | None = None) -> list[Path]:
    runs_dir = Path(runs_dir or default_runs_dir())
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if not p.name.startswith(".") and (p / "run.db").is_file())


def iter_runs(runs_dir: Path | None = None, readonly: bool = False) -> Iterator[Run]:
    for p in list_run_dirs(runs_dir):
        try:
            yield Run(p, readonly)
        except StoreError:
            continue


def reap_dead_runs(runs_dir: Path | None = None) -> list[str]:
    """Mark every active run in runs_dir whose worker is gone as crashed; the ids marked."""
    return _reap(runs_dir)[1]


def active_runs(runs_dir: Path | None = None) -> list[Path]:
    """The runs still training, oldest first, after marking those whose worker is gone (the TUI asks
    this of every run before it draws anything)."""
    return _reap(runs_dir)[0]


def _reap(runs_dir: Path | None) -> tuple[list[Path], list[str]]:
    """(the runs still training, the ids of those just marked crashed). Each run's state is read
    read-only; only an active one is opened to write, so a look at the runs never writes to a finished
    run's store (about 0.4 ms a run either way)."""
    live: list[Path] = []
    marked: list[str] = []
    for run in iter_runs(runs_dir, readonly=True):
        try:
            state = run.state()
        except (sqlite3.Error, OSError):  # a damaged store: listed as such by the runs views
            continue
        finally:
            run.close()
        if state not in ACTIVE_STATES:
            continue
        try:
            writer = Run(run.path)
            try:
                after = writer.reap()
                if after in ACTIVE_STATES:
                    live.append(run.path)
                elif after == "crashed":
                    marked.append(run.run_id)
            finally:
                writer.close()
        except (StoreError, sqlite3.Error, OSError):  # removed meanwhile, or left for its owner
            continue
    return live, marked


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
