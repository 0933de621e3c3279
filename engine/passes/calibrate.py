"""Temperature scaling: fit T on the validation split, report the test set before and after."""

from __future__ import annotations

from ..contracts import Calibrate, CalibrationResult
from ..evaluate import TemperatureFitError, calibrate, predict
from ..spec import RunSpec
from ..store import Run
from .common import Log, PassError, Subject, record, store_confusion, test_logits


def require_validation(run: Run, spec: RunSpec) -> None:
    """Checked before any model is built or loaded: a run without a validation split cannot calibrate."""
    if spec.data.val_size == 0:
        raise PassError(f"run {run.run_id} has no validation split to fit a temperature on: "
                        "calibration needs one (set data.val_size > 0 and train a new run)")


def calibrate_pass(run: Run, subj: Subject, command: Calibrate, log: Log | None = None) -> CalibrationResult:
    p = subj.parts
    require_validation(run, p.spec)
    val = predict(subj.model, p.val_x, p.spec.train.eval_batch_size, p.augment.eval, p.amp_dtype, p.channels_last)
    test = test_logits(subj)
    method = command.method or p.spec.evaluate.calibrate_method
    try:
        data = calibrate(val, p.val_y, test, p.test_y, bins=int(command.bins or p.spec.evaluate.ece_bins), method=method)
    except TemperatureFitError as exc:
        raise PassError(f"calibration of {subj.checkpoint}: {exc}") from None
    store_confusion(run, subj, test)
    result = CalibrationResult(**data, checkpoint=subj.checkpoint, step=subj.step, weights_sha256=subj.digest)
    return record(run, subj, result, "calibrated",
                  f"temperature {result.temperature:.3f} ({method}) on {subj.checkpoint}: ECE {result.before.ece:.2%} -> "
                  f"{result.after.ece:.2%}, NLL {result.before.nll:.4f} -> {result.after.nll:.4f}", log)
