"""The finishing passes side by side: base, SWA, calibrated, TTA, ensemble, each against the
baseline it names (the rows every report shows too: cockpit.core.finishing)."""

from __future__ import annotations

from typing import Mapping

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from cockpit.core.finishing import finishing_rows
from cockpit.core.formats import fmt_pct_std
from engine.contracts import TTAResult
from engine.store import StoredResult

PASS_TITLES = {"base": "base", "swa": "SWA", "calibrated": "calibrated", "tta": "TTA", "ensemble": "ensemble"}


def _change(v: float | None) -> Text:
    if v is None:
        return Text("")
    return Text(f"{v * 100:+.2f} pt", style="green" if v > 0 else "red" if v < 0 else "")


class ResultsTable(Static):
    """Test accuracy after each pass, and its change against the pass's own baseline."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Finishing passes"
        self.rows: list[dict] = []

    def show(self, latest: Mapping[str, StoredResult], last: Mapping[str, float]) -> None:
        """`latest`: the latest stored result of each pass; `last`: the run's latest metric values."""
        rows = finishing_rows(dict(last), dict(latest))
        if rows == self.rows and self.renderable_set:
            return
        self.rows = rows
        self.renderable_set = True
        if not rows:
            self.update(Text("none yet: w starts SWA, k calibrates, t runs TTA", style="dim"))
            return
        table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
        table.add_column("pass", no_wrap=True)
        table.add_column("test acc", justify="right", no_wrap=True)
        table.add_column("change", justify="right", no_wrap=True)
        table.add_column("vs", overflow="ellipsis", no_wrap=True, style="dim")
        titles = dict(PASS_TITLES)
        tta = latest.get("tta")
        if tta is not None and isinstance(tta.data, TTAResult) and tta.data.random_views:  # which draw(s) it is
            titles["tta"] = f"TTA · {tta.data.draws} draws" if tta.data.draws > 1 else f"TTA · {tta.data.seeds_text}"
        for r in rows:
            table.add_row(titles.get(r["pass"], r["pass"]), fmt_pct_std(r["acc"], r["acc_std"]), _change(r["delta_acc"]),
                          r["baseline"] or "")
        self.update(table)

    renderable_set = False
