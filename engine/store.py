"""The run store: `runs/<run-id>/`, the single source of truth for a run.

    spec.toml      the resolved spec, exactly what ran
    run.db         SQLite in WAL mode: meta, metrics, events, commands, results
    checkpoints/   last.pt, best.pt, swa.pt (written atomically)
    worker.log     the worker's own output

The worker is the only writer of metrics, events and results; clients (TUI, CLI, reports) read
rows by rowid and write commands, which the worker acknowledges. Every connection sets a busy
timeout, so a reader never crashes or blocks the writer for long.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from .contracts import Command, CommandError, ResultModel, UsageError, command_args, parse_command, parse_result
from . import storefs
from .storefs import pid_alive
from .spec import RunSpec, dump_spec, parse_spec_text, parse_toml

SCHEMA_VERSION = 1
STATES = ("created", "running", "paused", "finished", "stopped", "failed", "crashed")
ACTIVE_STATES = ("created", "running", "paused")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY, step INTEGER NOT NULL, epoch REAL NOT NULL,
    name TEXT NOT NULL, value REAL, wall REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_name_step ON metrics (name, step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, step INTEGER NOT NULL,
    kind TEXT NOT NULL, level TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, kind TEXT NOT NULL, args TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'pending',
    acked_wall REAL, reply TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY, wall REAL NOT NULL, step INTEGER NOT NULL, kind TEXT NOT NULL,
    checkpoint TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}');
"""

RUNS_ENV = "COCKPIT_RUNS"
WORKER_GONE = "worker process disappeared"
NEVER_STARTED = "no worker ever started for this run"
NEVER_STARTED_S = 60.0  # a run still `created` with no pid after this long was abandoned by its launch


@dataclass(frozen=True)
class PendingCommand:
    """A command row waiting for the worker: the typed command, or None and why it is malformed."""
    id: int
    kind: str
    command: Command | None
    error: str = ""


@dataclass(frozen=True)
class StoredResult:
    """A results row: where and when, and the typed data."""
    id: int
    wall: float
    step: int
    kind: str
    checkpoint: str
    data: ResultModel


class StoreError(UsageError):
    """A run that cannot be found or opened; the message says which and why (CLI: exit 2)."""


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV) or "runs")


def connect(db_path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to run.db; `readonly` opens it with SQLite's mode=ro (works on a store this
    process cannot write, and can never change it). Nothing here writes: a read-only store opens."""
    if readonly:
        con = _open(storefs.readonly_uri(db_path, immutable=False), uri=True)
        try:
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # a WAL store without its -shm file, in a folder this process cannot create it in
            con.close()
            if storefs.writable(Path(db_path).parent):
                raise
            con = _open(storefs.readonly_uri(db_path, immutable=True), uri=True)
        return con
    con = _open(db_path)
    # WAL + NORMAL: a commit survives a crash of any process (nothing lost on kill -9); only a power
    # cut can drop the last commits, never corrupt the file. FULL would fsync on every metric read.
    con.execute("PRAGMA synchronous = NORMAL")
    return con


def _open(target: Path | str, uri: bool = False) -> sqlite3.Connection:
    con = sqlite3.connect(target, timeout=10.0, isolation_level=None, check_same_thread=False, uri=uri)
    con.execute("PRAGMA busy_timeout = 10000")
    con.row_factory = sqlite3.Row
    return con


@dataclass(frozen=True)
class Metric:
    step: int
    epoch: float
    name: str
    value: float | None
    wall: float


def new_run_id(name: str, runs_dir: Path, now: datetime | None = None) -> str:
    """The id a run would get now: 20261127-231900-sgd_cosine (with -2, -3 on a clash). Only a
    guess: `Run.create` claims its id atomically (engine/storefs.py)."""
    return storefs.free_id(storefs.id_base(name, now), runs_dir)


class Run:
    """One run directory and its database."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        self.db_path = self.path / "run.db"
        if not self.db_path.is_file():
            raise StoreError(f"{self.path} is not a run directory (no run.db)")
        # readers that only read open run.db read-only, and so does anyone on a store they cannot write
        self.readonly = readonly or not storefs.writable(self.path)
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
        storefs.clean_stale(runs_dir)  # what launches killed mid-creation left
        base = storefs.id_base(spec.name)
        run_id, tmp = storefs.free_id(base, runs_dir), None
        try:
            tmp = storefs.scratch_dir(runs_dir, spec.name)
            cls._build(tmp, run_id, spec, preset)
            run_id = storefs.place(tmp, runs_dir, run_id, base, lambda rid: cls._relabel(tmp, rid, spec))
        except (OSError, sqlite3.Error) as exc:
            if tmp is not None:
                _rmtree(tmp)
            raise StoreError(f"cannot create a run in {runs_dir}: {storefs.describe(exc, runs_dir)}") from None
        return cls(runs_dir / run_id)

    @staticmethod
    def _build(tmp: Path, run_id: str, spec: RunSpec, preset: str) -> None:
        """spec.toml, checkpoints/ and an initialised run.db in `tmp`."""
        (tmp / "checkpoints").mkdir()
        (tmp / "spec.toml").write_text(dump_spec(spec, f"run {run_id}, resolved spec"), encoding="utf-8")
        con = connect(tmp / "run.db")
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(_SCHEMA)
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
            raise StoreError(f"{self.db_path} {storefs.damage(exc, self.db_path)}") from None
        return self

    # -- connection -------------------------------------------------------------------------

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = connect(self.db_path, readonly=self.readonly)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic WAL commit (the connection is in autocommit mode outside of these)."""
        if self.readonly:
            raise StoreError(f"{self.path} is read-only here: this needs to write to the run store")
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def run_id(self) -> str:
        return self.path.name

    def spec(self) -> RunSpec:
        """The spec the run was made with; StoreError (one line) when spec.toml is gone or unreadable."""
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

    # -- meta -------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self.con.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: Any) -> None:
        with self.transaction():
            self.con.executemany(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def state(self) -> str:
        """The run's state as recorded (reading never writes: `reap()` marks a dead worker's run)."""
        return self.meta().get("state", "created")

    def observed_state(self) -> str:
        """The state as a viewer should show it: an active run whose worker on this host is gone reads
        as crashed (nothing is written; `reap()` records it)."""
        meta = self.meta()
        state = meta.get("state", "created")
        if state == "created" and not meta.get("pid") and time.time() - float(meta.get("created") or 0) > NEVER_STARTED_S:
            return "crashed"  # made, but no worker ever took it (a launch that died, a full disk)
        if state in ACTIVE_STATES and meta.get("pid") and meta.get("host") == socket.gethostname():
            if not pid_alive(int(meta["pid"])):
                # the worker may have just finished: re-read before declaring a crash
                state = self.meta().get("state", state)
                return "crashed" if state in ACTIVE_STATES else state
        return state

    def reap(self) -> str:
        """The run's state, after marking it crashed if its worker on this host is gone (never left
        running). Made by the commands that own it (runs listing, attach, resume, the TUI); a
        read-only store is left as it is."""
        state = self.observed_state()
        if state == "crashed" and not self.readonly and self.state() in ACTIVE_STATES:
            why = WORKER_GONE if self.meta().get("pid") else NEVER_STARTED
            self.set_meta(state="crashed", ended=time.time(), error=why)
            self.add_event("crashed", why, level="error", step=self.last_step())
        return state

    # -- metrics ----------------------------------------------------------------------------

    def add_metrics(self, rows: Iterable[tuple[int, float, str, float | None]]) -> None:
        """Append (step, epoch, name, value) rows in one transaction."""
        now = time.time()
        with self.transaction():
            self.con.executemany(
                "INSERT INTO metrics (step, epoch, name, value, wall) VALUES (?, ?, ?, ?, ?)",
                [(s, e, n, v, now) for s, e, n, v in rows],
            )

    def metrics_since(self, after_id: int = 0, names: Iterable[str] | None = None) -> tuple[int, list[Metric]]:
        """Rows with id > after_id (optionally only some names), and the last id seen."""
        sql = "SELECT id, step, epoch, name, value, wall FROM metrics WHERE id > ?"
        args: list[Any] = [after_id]
        if names is not None:
            names = list(names)
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args += names
        rows = self.con.execute(sql + " ORDER BY id", args).fetchall()
        last = rows[-1]["id"] if rows else after_id
        return last, [Metric(r["step"], r["epoch"], r["name"], r["value"], r["wall"]) for r in rows]

    def series(self, name: str) -> list[tuple[int, float]]:
        """(step, value) for one metric, in step order."""
        rows = self.con.execute("SELECT step, value FROM metrics WHERE name = ? ORDER BY step, id", (name,))
        return [(r[0], r[1]) for r in rows]

    def metric_names(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def last_values(self) -> dict[str, float]:
        rows = self.con.execute(
            "SELECT name, value FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics GROUP BY name)"
        )
        return {r[0]: r[1] for r in rows}

    def best(self, name: str = "test_acc") -> float | None:
        row = self.con.execute("SELECT MAX(value) FROM metrics WHERE name = ?", (name,)).fetchone()
        return row[0]

    def last_step(self) -> int:
        row = self.con.execute("SELECT MAX(step) FROM metrics").fetchone()
        return int(row[0] or 0)

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step` (used on resume, so curves never hold duplicates)."""
        with self.transaction():
            self.con.execute("DELETE FROM metrics WHERE step > ?", (step,))

    # -- events -----------------------------------------------------------------------------

    def add_event(self, kind: str, message: str, *, level: str = "info", step: int = 0, **data: Any) -> None:
        with self.transaction():
            self.con.execute(
                "INSERT INTO events (wall, step, kind, level, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), step, kind, level, message, json.dumps(data)),
            )

    def events_since(self, after_id: int = 0) -> list[sqlite3.Row]:
        return self.con.execute("SELECT * FROM events WHERE id > ? ORDER BY id", (after_id,)).fetchall()

    # -- commands ---------------------------------------------------------------------------

    def send_command(self, command: Command | str, source: str = "", **args: Any) -> int:
        """Queue a command for the worker; validated at the door (CommandError says what is wrong).

        `command` is a typed `Command`, or a kind whose `args` are validated into one."""
        if isinstance(command, str):
            command = parse_command(command, args)
        elif args:
            raise TypeError("pass the arguments inside the Command model")
        with self.transaction():
            cur = self.con.execute(
                "INSERT INTO commands (wall, kind, args, source) VALUES (?, ?, ?, ?)",
                (time.time(), command.kind, json.dumps(command_args(command)), source),
            )
        return int(cur.lastrowid)

    def pending_commands(self) -> list[PendingCommand]:
        """Commands not yet acknowledged, oldest first. A row that does not validate (a damaged
        table, an old client) comes back with `command` None and `error` saying why."""
        rows = self.con.execute("SELECT id, kind, args FROM commands WHERE status = 'pending' ORDER BY id")
        out = []
        for cid, kind, raw in rows:
            try:
                args = json.loads(raw)
                if not isinstance(args, dict):
                    raise ValueError("arguments are not a JSON object")
                out.append(PendingCommand(cid, kind, parse_command(kind, args)))
            except (ValueError, CommandError) as exc:
                out.append(PendingCommand(cid, kind, None, f"malformed: {exc}"))
        return out

    def ack_command(self, cid: int, status: str = "done", reply: str = "") -> None:
        with self.transaction():
            self.con.execute(
                "UPDATE commands SET status = ?, acked_wall = ?, reply = ? WHERE id = ?",
                (status, time.time(), reply, cid),
            )

    def command(self, cid: int) -> sqlite3.Row | None:
        return self.con.execute("SELECT * FROM commands WHERE id = ?", (cid,)).fetchone()

    def wait_command(self, cid: int, timeout: float = 30.0, poll: float = 0.1) -> sqlite3.Row | None:
        """Wait until the worker acknowledges a command (or the run ends); None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.command(cid)
            if row is not None and row["status"] != "pending":
                return row
            if self.reap() not in ACTIVE_STATES:
                return self.command(cid)
            time.sleep(poll)
        return None

    # -- results ----------------------------------------------------------------------------

    def add_result(self, result: ResultModel, *, step: int = 0, checkpoint: str = "") -> None:
        """Store a typed result (its kind is the model's)."""
        if not isinstance(result, ResultModel) or not result.KIND:
            raise TypeError(f"add_result takes a result model from engine.contracts, not {type(result).__name__}")
        with self.transaction():
            self.con.execute(
                "INSERT INTO results (wall, step, kind, checkpoint, data) VALUES (?, ?, ?, ?, ?)",
                (time.time(), step, result.KIND, checkpoint, result.model_dump_json()),
            )

    def results(self, kind: str | None = None, after_id: int = 0) -> list[StoredResult]:
        """Stored results (of one kind), oldest first, validated into their models; a row that does
        not validate (a damaged table, a kind this version does not know) is left out."""
        sql, args = "SELECT * FROM results WHERE id > ?", (after_id,)
        if kind:
            sql, args = sql + " AND kind = ?", (after_id, kind)
        out = []
        for r in self.con.execute(sql + " ORDER BY id", args).fetchall():
            try:
                data = parse_result(r["kind"], json.loads(r["data"]))
            except ValueError:  # pydantic's ValidationError is a ValueError too
                continue
            out.append(StoredResult(r["id"], r["wall"], r["step"], r["kind"], r["checkpoint"], data))
        return out

    # -- reads for the views ----------------------------------------------------------------

    def metric_names_by_first_write(self) -> list[str]:
        """Metric names in the order the worker first wrote them (network order for per-layer names)."""
        rows = self.con.execute("SELECT name, MIN(id) FROM metrics GROUP BY name ORDER BY 2")
        return [r[0] for r in rows]

    def last_result_id(self) -> int:
        """The id of the newest results row (0 when there is none): results after it are new."""
        row = self.con.execute("SELECT MAX(id) FROM results").fetchone()
        return int(row[0] or 0)


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
    marked = []
    for run in iter_runs(runs_dir):
        try:
            before = run.state()
            if before in ACTIVE_STATES and run.reap() == "crashed":
                marked.append(run.run_id)
        except (sqlite3.Error, OSError):  # a damaged or unwritable store: left for its owner
            continue
        finally:
            run.close()
    return marked


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
