"""The run store: `runs/<run-id>/`, the single source of truth for a run.

    spec.toml      the resolved spec, exactly what ran
    run.db         SQLite in WAL mode: meta, metrics, events, commands, results
    checkpoints/   last.pt, best.pt, swa.pt (written atomically)
    worker.log     the worker's own output

The worker writes metrics, events and results; clients (TUI, CLI, reports) read rows by rowid and
write commands (and the passes they run in-process write their results), which the worker
acknowledges. Every connection sets a busy timeout, so a reader never crashes or blocks a writer
for long.

This package is a facade over its parts, as optuna's `storages/` is: `run` (making and finding
runs), `db` (run.db, connections, transactions), `metrics`, `lifecycle` (meta, state, events),
`commands` (commands and results), `layout` (where a run lives on disk) and `process` (whether a
recorded worker still runs).
"""

from .commands import PendingCommand, RunCommands, StoredResult
from .db import SCHEMA_VERSION, RunDB, StoreError, connect
from .lifecycle import ACTIVE_STATES, NEVER_STARTED, NEVER_STARTED_S, WORKER_GONE, RunLifecycle
from .metrics import Metric, RunSeries
from .process import pid_alive
from .run import (RUNS_ENV, Run, active_runs, default_runs_dir, iter_runs, list_run_dirs, new_run_id, reap_dead_runs,
                  resolve_run)

__all__ = ["ACTIVE_STATES", "NEVER_STARTED", "NEVER_STARTED_S", "RUNS_ENV", "SCHEMA_VERSION", "WORKER_GONE",
           "Metric", "PendingCommand", "Run", "RunCommands", "RunDB", "RunLifecycle", "RunSeries", "StoreError",
           "StoredResult", "active_runs", "connect", "default_runs_dir", "iter_runs", "list_run_dirs", "new_run_id",
           "pid_alive", "reap_dead_runs", "resolve_run"]
