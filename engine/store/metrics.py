"""A run's metrics table: the worker appends (step, epoch, name, value) rows; the views read them
back by rowid (what is new), as series (one curve) or as the latest values.

Every read goes through `_checked`: SQLite keeps whatever a damaged or hand-edited run.db holds (a text
value in a REAL column stays text), and a string that reached a view crashed its formatting, or, where
a view forgave it, was silently dropped. A row whose step, epoch or value is not a number makes the
store damaged (StoreError naming the metric and step), for every reader alike: `runs` and the TUI list
the run as unreadable with that reason, and report, compare and attach exit 2 with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

from .db import RunDB, StoreError


def _is_number(v: Any) -> bool:
    return v is None or (type(v) in (int, float))  # NULL is a non-finite value (SQLite stores NaN as NULL)


def _damaged(db: Any, name: Any, step: Any, what: str, v: Any) -> StoreError:
    return StoreError(f"{db} is damaged: metric {name!r} at step {step!r} has the {what} {v!r}, not a number "
                      f"(restore run.db from a copy, or delete the run)")


def _checked(db: Any, rows: Iterable, cols: tuple[str, ...], name: str | None = None) -> list:
    """The rows, once every named column of each is a number (or NULL); else StoreError for the first bad one.
    `name` is the metric the rows belong to when they carry no name column."""
    rows = list(rows)
    for r in rows:
        for col in cols:
            v = r[col]
            if not _is_number(v):
                raise _damaged(db, r["name"] if name is None else name, r["step"], col, v)
    return rows


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
        rows = _checked(self.db_path, self.con.execute(sql + " ORDER BY id", args), ("step", "epoch", "value", "wall"))
        last = rows[-1]["id"] if rows else after_id
        return last, [Metric(r["step"], r["epoch"], r["name"], r["value"], r["wall"]) for r in rows]

    def series(self, name: str) -> list[tuple[int, float]]:
        """(step, value) for one metric, in step order."""
        rows = self.con.execute("SELECT step, value FROM metrics WHERE name = ? ORDER BY step, id", (name,))
        return [(r[0], r[1]) for r in _checked(self.db_path, rows, ("step", "value"), name)]

    def evaluations(self, name: str) -> list[tuple[int, float, float | None, float]]:
        """(step, epoch, value, wall) for one metric, in step order."""
        rows = self.con.execute("SELECT step, epoch, value, wall FROM metrics WHERE name = ? ORDER BY step, id", (name,))
        return [(r[0], r[1], r[2], r[3]) for r in _checked(self.db_path, rows, ("step", "epoch", "value", "wall"), name)]

    def metric_names(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def metric_names_by_first_write(self) -> list[str]:
        """Metric names in the order the worker first wrote them (network order for per-layer names)."""
        rows = self.con.execute("SELECT name, MIN(id) FROM metrics GROUP BY name ORDER BY 2")
        return [r[0] for r in rows]

    def last_values(self) -> dict[str, float]:
        rows = self.con.execute(
            "SELECT name, step, value FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics GROUP BY name)"
        )
        return {r[0]: r[2] for r in _checked(self.db_path, rows, ("step", "value"))}

    def best(self, name: str = "test_acc") -> float | None:
        """The highest value of one metric (SQLite sorts any text above every number, so one is seen)."""
        rows = self.con.execute("SELECT name, step, value FROM metrics WHERE name = ? ORDER BY value DESC, id LIMIT 1",
                                (name,))
        return next((r["value"] for r in _checked(self.db_path, rows, ("step", "value"))), None)

    def last_step(self) -> int:
        rows = self.con.execute("SELECT name, step FROM metrics ORDER BY step DESC, id LIMIT 1")
        return int(next((r["step"] for r in _checked(self.db_path, rows, ("step",))), 0))

    def last_epoch(self) -> float:
        rows = self.con.execute("SELECT name, step, epoch FROM metrics ORDER BY epoch DESC, id LIMIT 1")
        return float(next((r["epoch"] for r in _checked(self.db_path, rows, ("step", "epoch"))), 0.0))

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step` (used on resume, so curves never hold duplicates)."""
        with self.transaction():
            self.con.execute("DELETE FROM metrics WHERE step > ?", (step,))
