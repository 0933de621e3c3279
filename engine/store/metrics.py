"""A run's metrics table: the worker appends (step, epoch, name, value) rows; the views read them
back by rowid (what is new), as series (one curve) or as the latest values."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

from .db import RunDB


@dataclass(frozen=True)
class Metric:
    step: int
    epoch: float
    name: str
    value: float | None
    wall: float


class RunSeries(RunDB):
    """Writing and reading a run's metrics (a part of `engine.store.Run`)."""

    def add_metrics(self, rows: Iterable[tuple[int, float, str, float | None]]) -> None:
        """Append (step, epoch, name, value) rows in one transaction."""
        now = time.time()
        with self.transaction():
            self.con.executemany(
                "INSERT INTO metrics (step, epoch, name, value, wall) VALUES (?, ?, ?, ?, ?)",
                [(s, e, n, v, now) for s, e, n, v in rows],
            )

    def metrics_since(self, after_id: int = 0, names: Iterable[str] | None = None) -> tuple[int, list[Metric]]:
        """Rows with id > after_id (optionally only some names), and the last id seen."""
        sql = "SELECT id, step, epoch, name, value, wall FROM metrics WHERE id > ?"
        args: list[Any] = [after_id]
        if names is not None:
            names = list(names)
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args += names
        rows = self.con.execute(sql + " ORDER BY id", args).fetchall()
        last = rows[-1]["id"] if rows else after_id
        return last, [Metric(r["step"], r["epoch"], r["name"], r["value"], r["wall"]) for r in rows]

    def series(self, name: str) -> list[tuple[int, float]]:
        """(step, value) for one metric, in step order."""
        rows = self.con.execute("SELECT step, value FROM metrics WHERE name = ? ORDER BY step, id", (name,))
        return [(r[0], r[1]) for r in rows]

    def metric_names(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def metric_names_by_first_write(self) -> list[str]:
        """Metric names in the order the worker first wrote them (network order for per-layer names)."""
        rows = self.con.execute("SELECT name, MIN(id) FROM metrics GROUP BY name ORDER BY 2")
        return [r[0] for r in rows]

    def last_values(self) -> dict[str, float]:
        rows = self.con.execute(
            "SELECT name, value FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics GROUP BY name)"
        )
        return {r[0]: r[1] for r in rows}

    def best(self, name: str = "test_acc") -> float | None:
        row = self.con.execute("SELECT MAX(value) FROM metrics WHERE name = ?", (name,)).fetchone()
        return row[0]

    def last_step(self) -> int:
        row = self.con.execute("SELECT MAX(step) FROM metrics").fetchone()
        return int(row[0] or 0)

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step` (used on resume, so curves never hold duplicates)."""
        with self.transaction():
            self.con.execute("DELETE FROM metrics WHERE step > ?", (step,))
