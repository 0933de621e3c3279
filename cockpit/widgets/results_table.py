"""The finishing passes side by side: base, SWA, calibrated, TTA, as before -> after rows."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

PASS_TITLES = {"swa": "SWA", "calibrate": "calibrated", "tta": "TTA"}
SKIP = {"hardest"}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "—"
    if "acc" in metric:
        return f"{v:.2%}"
    return f"{v:.4f}"


def _delta(metric: str, a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    if "acc" in metric:
        return f"{d * 100:+.2f} pt"
    return f"{d:+.4f}"


def finishing_rows(results: list[dict[str, Any]], last: dict[str, float]) -> list[tuple[str, str, float | None, float | None]]:
    """(pass, metric, before, after) rows from the results table and the run's last metrics."""
    base = {"acc": _num(last.get("test_acc")), "loss": _num(last.get("test_loss"))}
    rows: list[tuple[str, str, float | None, float | None]] = []
    if base["acc"] is not None:
        rows.append(("base", "test acc", None, base["acc"]))
    latest: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.get("kind") not in SKIP:
            latest[r["kind"]] = r.get("data") or {}
    for kind, data in latest.items():
        title = PASS_TITLES.get(kind, kind)
        before, after = data.get("before"), data.get("after")
        if isinstance(before, dict) or isinstance(after, dict):
            before, after = before or {}, after or {}
            for key in [k for k in after if _num(after.get(k)) is not None] or list(before):
                rows.append((title, key, _num(before.get(key)), _num(after.get(key))))
        elif _num(before) is not None or _num(after) is not None:
            rows.append((title, "value", _num(before), _num(after)))
        elif kind == "swa":
            rows.append((title, "test acc", base["acc"], _num(data.get("test_acc"))))
            rows.append((title, "test loss", base["loss"], _num(data.get("test_loss"))))
        else:  # e.g. {"base_acc": .., "tta_acc": .., "tta_loss": ..}
            accs = [k for k in data if "acc" in k and _num(data[k]) is not None]
            after_key = next((k for k in accs if not k.startswith("base")), None)
            if after_key:
                rows.append((title, "test acc", _num(data.get("base_acc")) or base["acc"], _num(data[after_key])))
    return rows


class ResultsTable(Static):
    """Base, SWA, calibrated and TTA figures, each pass against the base model."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Finishing passes"
        self.rows: list[tuple[str, str, float | None, float | None]] = []

    def show(self, results: list[dict[str, Any]], last: dict[str, float]) -> None:
        rows = finishing_rows(results, last)
        if rows == self.rows and self.renderable_set:
            return
        self.rows = rows
        self.renderable_set = True
        if not rows:
            self.update(Text("none yet: w starts SWA, k calibrates, t runs TTA", style="dim"))
            return
        table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
        table.add_column("pass")
        table.add_column("metric")
        table.add_column("before", justify="right")
        table.add_column("after", justify="right")
        table.add_column("change", justify="right")
        for title, metric, before, after in rows:
            table.add_row(title, metric, _fmt(metric, before), _fmt(metric, after), _delta(metric, before, after))
        self.update(table)

    renderable_set = False
