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
`commands` (commands and results), `layout` (where a run lives on disk), `process` (whether a
recorded worker still runs) and `claim` (one worker per run: an OS lock its worker holds for life).
"""

from .claim import ClaimHeld, RunClaim
from .commands import ANSWERED, CommandStatus, PendingCommand, RunCommands, StoredResult
from .db import SCHEMA_VERSION, RunDB, StoreError, connect
from .lifecycle import (ACTIVE_STATES, NEVER_STARTED, NEVER_STARTED_S, NOT_RESPONDING, WORKER_GONE, RunLifecycle,
                        ShownState, shown_state)
from .liveness import Heartbeat, not_responding_after, silent_for
from .metrics import Metric, RunSeries
from .process import pid_alive, process_start
from .run import (RUNS_ENV, Run, active_runs, default_runs_dir, iter_runs, list_run_dirs, new_run_id, reap_dead_runs,
                  resolve_run)

__all__ = ["ACTIVE_STATES", "ANSWERED", "NEVER_STARTED", "NEVER_STARTED_S", "NOT_RESPONDING", "RUNS_ENV", "SCHEMA_VERSION",
           "WORKER_GONE", "ClaimHeld", "CommandStatus", "Heartbeat", "Metric", "PendingCommand", "Run", "RunClaim",
           "RunCommands", "RunDB", "RunLifecycle", "RunSeries", "ShownState", "StoreError", "StoredResult",
           "active_runs", "connect", "default_runs_dir", "iter_runs", "list_run_dirs", "new_run_id", "not_responding_after",
           "pid_alive", "process_start", "reap_dead_runs", "resolve_run", "shown_state", "silent_for"]
