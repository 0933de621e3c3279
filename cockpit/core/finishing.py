"""The finishing passes side by side (base, SWA, calibrated, TTA, ensemble), read from the typed
results: the rows the dashboard's table and every report show, from this one function.

Every row says which model it measured (`model`: checkpoint and step) and every delta names its
baseline (`baseline`): the pass's own baseline where it measured one on the same checkpoint (SWA's
and TTA's base, calibration's `before`), the best member for an ensemble, else the base row (the
final model). The base row holds the final model's figures only (no ECE measured on another model).
"""

from __future__ import annotations

import math
from typing import Any

from engine.contracts import CalibrationResult, EnsembleResult, SWAResult, TTAResult
from engine.store import StoredResult

FIELDS = ("pass", "model", "acc", "acc_std", "loss", "ece", "delta_acc", "delta_loss", "baseline", "detail")
Row = dict[str, Any]


def finite(v: Any) -> float | None:
    """A JSON-safe number: NaN and infinities become None."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def finishing_rows(final: dict[str, Any], results: dict[str, StoredResult], final_step: int | None = None) -> list[Row]:
    """The rows side by side (the latest result of each pass counts), each with its deltas;
    `final_step` is the step of the final model's test evaluation."""
    swa, cal, tta, ens = (results.get(k) for k in ("swa", "calibrate", "tta", "ensemble"))
    base = _base_row(final, final_step)
    rows = [base] if base else []
    rows += [make(r) for r, make in ((swa, _swa_row), (cal, _calibration_row), (tta, _tta_row), (ens, _ensemble_row))
             if r is not None]
    for r in rows:
        ref_acc, ref_loss = r.pop("_ref")
        if r is base:
            r["delta_acc"] = r["delta_loss"] = None
            continue
        if ref_acc is None and ref_loss is None:
            r["baseline"] = f"base ({base['model']})" if base else None
            ref_acc, ref_loss = (base["acc"], base["loss"]) if base else (None, None)
        r["delta_acc"] = r["acc"] - ref_acc if r["acc"] is not None and ref_acc is not None else None
        r["delta_loss"] = r["loss"] - ref_loss if r["loss"] is not None and ref_loss is not None else None
        if r["delta_acc"] is None and r["delta_loss"] is None:
            r["baseline"] = None
    return [{k: r.get(k) for k in FIELDS} for r in rows]


def _base_row(final: dict[str, Any], final_step: int | None) -> Row | None:
    """The final model's test figures (the last evaluation of the training loop)."""
    acc, loss = finite(final.get("test_acc")), finite(final.get("test_loss"))
    if acc is None and loss is None:
        return None
    model = "final model" + (f" · step {final_step:,}" if final_step is not None else "")
    return {"pass": "base", "model": model, "acc": acc, "loss": loss, "ece": None, "detail": "the training loop's last evaluation",
            "baseline": None, "_ref": (None, None)}


def _model(checkpoint: str | None, step: int | None) -> str:
    """'best.pt · step 196': which checkpoint a pass measured, at which step."""
    parts = [checkpoint or "model"] + ([f"step {step:,}"] if step is not None else [])
    return " · ".join(parts)


def _swa_row(stored: StoredResult) -> Row:
    r: SWAResult = stored.data
    detail = f"averaged weights, {r.epochs} epoch{'' if r.epochs == 1 else 's'}"
    base = "the model it averaged" + (f" (step {r.base_step:,})" if r.base_step is not None else "")
    return {"pass": "swa", "model": _model(stored.checkpoint or "swa.pt", r.step if r.step is not None else stored.step),
            "acc": finite(r.test_acc), "loss": finite(r.test_loss), "ece": None, "detail": detail,
            "baseline": base, "_ref": (finite(r.base_acc), finite(r.base_loss))}


def _calibration_row(stored: StoredResult) -> Row:
    r: CalibrationResult = stored.data
    t = finite(r.temperature)
    detail = f"temperature {t:.3g} ({r.method})" if t is not None else f"temperature scaling ({r.method})"
    ece = finite(r.before.ece)
    detail += f", ECE before {ece:.2%}" if ece is not None else ""
    return {"pass": "calibrated", "model": _model(r.checkpoint or stored.checkpoint, r.step), "acc": finite(r.after.acc),
            "loss": finite(r.after.nll), "ece": finite(r.after.ece), "detail": detail,
            "baseline": f"{r.checkpoint or 'the model'} before scaling", "_ref": (finite(r.before.acc), finite(r.before.nll))}


def _tta_row(stored: StoredResult) -> Row:
    r: TTAResult = stored.data
    n = r.n_views or len(r.views)
    detail = f"{n} views: {', '.join(r.views)}" if r.views else f"{n} views"
    detail += f" ({r.combine}), " + (f"mean ± sample std over {r.draws} draws, " if r.draws > 1 else "") + r.seeds_text
    return {"pass": "tta", "model": _model(r.checkpoint or stored.checkpoint, stored.step), "acc": finite(r.tta_acc),
            "acc_std": finite(r.tta_acc_std), "loss": finite(r.tta_loss), "ece": finite(r.ece), "detail": detail,
            "baseline": f"{r.checkpoint or 'the model'} without TTA (identity view)",
            "_ref": (finite(r.base_acc), finite(r.base_loss))}


def _ensemble_row(stored: StoredResult) -> Row:
    r: EnsembleResult = stored.data
    detail = f"{len(r.members)} members, mean probability" if r.members else "mean probability"
    best = max(r.members, key=lambda m: m.acc, default=None)
    model = f"{len(r.members)} runs' " + ("/".join(sorted(set(r.checkpoints))) if r.checkpoints else "models")
    baseline = f"the best member ({best.run})" if best is not None else "the best member"
    return {"pass": "ensemble", "model": model, "acc": finite(r.headline_acc), "loss": finite(r.nll), "ece": None,
            "detail": detail, "baseline": baseline, "_ref": (finite(r.best_member_acc), best and finite(best.nll))}
