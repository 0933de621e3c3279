"""The finishing passes side by side: base, SWA, calibrated, TTA, as before -> after rows."""

from __future__ import annotations

from typing import Iterable, Mapping

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cockpit.core.finishing import finishing_rows
from engine.contracts import ResultModel


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


class ResultsTable(Static):
    """Base, SWA, calibrated and TTA figures, each pass against the base model."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Finishing passes"
        self.rows: list[tuple[str, str, float | None, float | None]] = []

    def show(self, results: Iterable[ResultModel], last: Mapping[str, float]) -> None:
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
