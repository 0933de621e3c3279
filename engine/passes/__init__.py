"""Finishing passes on a run: temperature calibration, TTA, SWA, ensembles, and the LR range test.

Each pass is built on `engine.setup` (and the training step where it trains), never on a trainer.
calibrate, tta and confusion work in one of two ways:

* offline, on a finished (or stopped, crashed) run: the run's parts are rebuilt from its spec.toml
  (the same data, split and normalization) and a checkpoint is loaded (best, falling back to last);
* live, inside the worker that owns a running or paused run: the worker passes its parts as
  `live=` between two steps, and the pass uses the in-memory model (random views draw under
  `torch.random.fork_rng`, so the run's own RNG stream is untouched).

Either way the result goes to the run store as a typed result (engine.contracts) plus an event.
"""

from __future__ import annotations

from ..contracts import (TTA, Calibrate, CalibrationResult, ConfusionResult, PassCommand, ResultModel, SWAResult,
                         TTAResult)
from ..setup import Components
from ..store import Run
from .calibrate import calibrate_pass, require_validation
from .common import Log, PassError, load_weights, store_confusion, subject, test_logits
from .ensemble import ensemble_runs
from .lr_find import lr_find
from .swa import swa_pass
from .tta import tta_pass

__all__ = ["PassError", "run_pass", "pass_summary", "swa_pass", "lr_find", "ensemble_runs", "load_weights"]


def run_pass(run: Run, command: PassCommand, live: Components | None = None, live_step: int = 0, *,
             log: Log | None = None) -> ResultModel:
    """Compute a finishing pass on `run`, store it (result + event) and return the typed result.

    The command is the one a live worker gets through its commands table (engine.contracts:
    Calibrate, TTA, Confusion), so the worker and the CLI's in-process pass share this one path.
    live: the worker's parts (the pass then uses its in-memory model at `live_step`, or, when the
      command names a checkpoint, a copy loaded from it); None: rebuild the run's parts from its
      spec and load the command's checkpoint (default "best", falling back to "last").
    The SWA pass trains, so it is `swa_pass` (offline only; a live run starts SWA by its command).
    """
    if isinstance(command, Calibrate):
        require_validation(run, live.spec if live is not None else run.spec())
    subj = subject(run, live, live_step, command.checkpoint, log)
    if isinstance(command, Calibrate):
        return calibrate_pass(run, subj, command, log=log)
    if isinstance(command, TTA):
        return tta_pass(run, subj, command, log=log)
    return store_confusion(run, subj, test_logits(subj))


def pass_summary(result: ResultModel) -> str:
    """One line for a command's reply (the worker acks a pass command with this)."""
    if isinstance(result, CalibrationResult):
        return (f"T={result.temperature:.3f}: ECE {result.before.ece:.2%} -> {result.after.ece:.2%}, "
                f"NLL {result.before.nll:.4f} -> {result.after.nll:.4f}")
    if isinstance(result, TTAResult):
        return f"TTA {result.base_acc:.2%} -> {result.tta_acc:.2%} ({result.delta:+.2%}, {result.n_views} views)"
    if isinstance(result, SWAResult):
        return f"SWA {result.base_acc:.2%} -> {result.swa_acc:.2%} ({result.delta:+.2%}) after {result.epochs} epochs"
    if isinstance(result, ConfusionResult):
        accs = [a for a in result.per_class_acc if a is not None]
        return f"confusion matrix over {len(result.classes)} classes (mean class acc {sum(accs) / max(len(accs), 1):.2%})"
    return "done"
