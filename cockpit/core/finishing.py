"""The finishing passes side by side (base, SWA, calibrated, TTA, ensemble) as
(pass, metric, before, after) rows: what the dashboard's results table shows, from the typed results
and the run's last metrics."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from engine.contracts import CalibrationResult, EnsembleResult, ResultModel, SWAResult, TTAResult

PASS_TITLES = {"swa": "SWA", "calibrate": "calibrated", "tta": "TTA", "ensemble": "ensemble"}
SKIP = {"hardest", "confusion", "lr_find"}  # not a before/after figure

Row = tuple[str, str, "float | None", "float | None"]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def finishing_rows(results: Iterable[ResultModel], last: Mapping[str, float]) -> list[Row]:
    """(pass, metric, before, after) rows; the latest result of each kind counts."""
    base_acc, base_loss = _num(last.get("test_acc")), _num(last.get("test_loss"))
    rows: list[Row] = [("base", "test acc", None, base_acc)] if base_acc is not None else []
    latest = {r.KIND: r for r in results if r.KIND not in SKIP}
    for kind, result in latest.items():
        rows += _pass_rows(PASS_TITLES.get(kind, kind), result, base_acc, base_loss)
    return rows


def _pass_rows(title: str, r: ResultModel, base_acc: float | None, base_loss: float | None) -> list[Row]:
    if isinstance(r, CalibrationResult):
        return [(title, key, _num(getattr(r.before, key)), _num(getattr(r.after, key)))
                for key in type(r.after).model_fields]  # nll, ece, acc: the engine's own order
    if isinstance(r, SWAResult):
        return [(title, "test acc", base_acc, _num(r.test_acc)), (title, "test loss", base_loss, _num(r.test_loss))]
    if isinstance(r, TTAResult):
        return [(title, "test acc", _num(r.base_acc), _num(r.tta_acc))]
    if isinstance(r, EnsembleResult):  # against its best member, as the report and the CLI say
        return [(f"{title} vs best member", "test acc", _num(r.best_member_acc), _num(r.headline_acc))]
    acc = r.headline_acc
    return [(title, "test acc", base_acc, _num(acc))] if acc is not None else []
