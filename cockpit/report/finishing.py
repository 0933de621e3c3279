"""A report's finishing-pass rows: base, SWA, calibrated, TTA, ensemble, read from the typed results.

Deltas are against the pass's own baseline when it measured one on the same checkpoint (SWA's and
TTA's base accuracy, calibration's `before`), else against the base row (the final model).
"""

from __future__ import annotations

import math
from typing import Any

from engine.contracts import CalibrationResult, EnsembleResult, SWAResult, TTAResult
from engine.store import StoredResult

FIELDS = ("pass", "acc", "loss", "ece", "delta_acc", "delta_loss", "detail")
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


def finishing_rows(final: dict[str, Any], results: dict[str, StoredResult]) -> list[Row]:
    """The rows side by side (the latest result of each pass counts), each with its deltas."""
    swa, cal, tta, ens = (results.get(k) for k in ("swa", "calibrate", "tta", "ensemble"))
    base = _base_row(final, *(r.data if r else None for r in (swa, cal, tta)))
    rows = [base] if base else []
    rows += [make(r) for r, make in ((swa, _swa_row), (cal, _calibration_row), (tta, _tta_row), (ens, _ensemble_row))
             if r is not None]
    for r in rows:
        ref_acc, ref_loss = r.pop("_ref")
        if r is base:
            r["delta_acc"] = r["delta_loss"] = None
            continue
        ref_acc = base["acc"] if ref_acc is None and base else ref_acc
        ref_loss = base["loss"] if ref_loss is None and base else ref_loss
        r["delta_acc"] = r["acc"] - ref_acc if r["acc"] is not None and ref_acc is not None else None
        r["delta_loss"] = r["loss"] - ref_loss if r["loss"] is not None and ref_loss is not None else None
    return [{k: r.get(k) for k in FIELDS} for r in rows]


def _base_row(final: dict[str, Any], swa: SWAResult | None, cal: CalibrationResult | None,
              tta: TTAResult | None) -> Row | None:
    """The final model: its test figures, else the baseline a pass measured on it."""
    acc, loss = final.get("test_acc"), final.get("test_loss")
    for fallback in (tta and tta.base_acc, cal and cal.before.acc, swa and swa.base_acc):
        acc = finite(fallback) if acc is None else acc
    if loss is None:
        loss = finite(tta and tta.base_loss) or finite(cal and cal.before.nll)
    if acc is None and loss is None:
        return None
    return {"pass": "base", "acc": acc, "loss": loss, "ece": finite(cal and cal.before.ece), "detail": "final model",
            "_ref": (None, None)}


def _with_checkpoint(detail: str, stored: StoredResult) -> str:
    return f"{detail} · {stored.checkpoint}" if stored.checkpoint else detail


def _swa_row(stored: StoredResult) -> Row:
    r: SWAResult = stored.data
    detail = f"averaged weights, {r.epochs} epoch{'' if r.epochs == 1 else 's'}"
    return {"pass": "swa", "acc": finite(r.test_acc), "loss": finite(r.test_loss), "ece": None,
            "detail": _with_checkpoint(detail, stored), "_ref": (finite(r.base_acc), finite(r.base_loss))}


def _calibration_row(stored: StoredResult) -> Row:
    r: CalibrationResult = stored.data
    t = finite(r.temperature)
    detail = f"temperature {t:.3g}" if t is not None else "temperature scaling"
    return {"pass": "calibrated", "acc": finite(r.after.acc), "loss": finite(r.after.nll), "ece": finite(r.after.ece),
            "detail": _with_checkpoint(detail, stored), "_ref": (finite(r.before.acc), finite(r.before.nll))}


def _tta_row(stored: StoredResult) -> Row:
    r: TTAResult = stored.data
    n = r.n_views or len(r.views)
    detail = f"{n} views: {', '.join(r.views)}" if r.views else f"{n} views"
    return {"pass": "tta", "acc": finite(r.tta_acc), "loss": finite(r.tta_loss), "ece": finite(r.ece),
            "detail": _with_checkpoint(f"{detail} ({r.combine})", stored),
            "_ref": (finite(r.base_acc), finite(r.base_loss))}


def _ensemble_row(stored: StoredResult) -> Row:
    r: EnsembleResult = stored.data
    detail = f"{len(r.members)} members" if r.members else "ensemble"
    if finite(r.best_member_acc) is not None:
        detail += f", best member {r.best_member_acc:.2%}"
    return {"pass": "ensemble", "acc": finite(r.headline_acc), "loss": finite(r.nll), "ece": None, "detail": detail,
            "_ref": (None, None)}
