"""Everything that crosses the run store, typed once (one module each, behind this facade): commands, results, the metric catalogue, usage errors.

The worker, the CLI, the TUI and the reports run in different processes and meet only in `run.db`.
This module is what they agree on. It is torch-free (the TUI imports it) and has no UI imports.

* Commands: one pydantic model per kind, joined in the discriminated union `Command`. A command is
  validated when it is written (`Run.send_command`) and again when the worker reads it, so a set-lr of
  NaN never reaches the optimizer and a damaged row is refused, not fatal.
* Results: one versioned model per result kind (`calibrate`, `tta`, `swa`, ...), validated on write
  and on read. Each names its headline accuracy (`headline_acc`), so a view never guesses keys.
* Metrics: `metric_info(name)` gives the label, unit, format and group of any metric name the engine
  writes, including the per-layer, per-group and per-block families.
* Run meta: the typed parts of a run's meta that the engine writes and the views read (`inference`:
  what predict and export need; `runtime`: what actually ran).
* `UsageError` (from engine.errors): the base of every error a user fixes by changing their input; the CLI
  exits 2 on it.
"""

from __future__ import annotations

from ..errors import UsageError  # defined without pydantic, for the store; one class, re-exported here
from .commands import (COMMAND_KINDS, Calibrate, Checkpoint, Command, CommandError, Confusion, Continue,
                       PASS_COMMANDS, PassCommand, Pause, SetLR, StartSWA, Stop, TTA, command_args,
                       parse_command)
from .results import (BeforeAfter, CALIBRATE_METHODS, CalibrationResult, ConfusionResult, EnsembleMember,
                      EnsembleResult, HardExample, HardestResult, LRFindResult, LRPoint, RESULT_MODELS,
                      Reliability, ReliabilityBin, ResultModel, SWAResult, SlowOnCPU, SplitStats, TTAResult,
                      parse_result)
from .run_meta import (InferenceInfo, NOT_CALIBRATED, RunMeta, RunState, RuntimeInfo, meta_model)
from .metrics import (METRICS, MetricInfo, SYSTEM_GPU, format_metric, metric_info)

__all__ = [
    "UsageError", "CommandError",
    "Stop", "Pause", "Continue", "Checkpoint", "SetLR", "StartSWA", "Calibrate", "TTA", "Confusion",
    "Command", "COMMAND_KINDS", "PASS_COMMANDS", "PassCommand", "parse_command", "command_args",
    "ResultModel", "CalibrationResult", "TTAResult", "SWAResult", "EnsembleResult", "LRFindResult",
    "ConfusionResult", "HardestResult", "RESULT_MODELS", "parse_result", "SlowOnCPU",
    "InferenceInfo", "RuntimeInfo", "meta_model", "NOT_CALIBRATED",
    "MetricInfo", "METRICS", "SYSTEM_GPU", "metric_info", "format_metric",
    "RunMeta", "RunState",
]
