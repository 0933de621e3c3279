"""Which checkpoint a run selected as best.pt, and its test accuracy, from the run store alone.

The engine writes best.pt at the first evaluation with the highest validation accuracy; a run with
no validation split selects the last evaluation (choosing on the test set would be peeking). So the
honest "best acc" of a run is the test accuracy at that evaluation, never the highest test accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from engine.store import Run

__all__ = ["BEST_MEANS", "Selection", "choose", "selected"]

# what "best" means wherever it is shown (runs list, compare, reports)
BEST_MEANS = ("best = the test accuracy of best.pt, the evaluation with the highest validation accuracy (a run "
              "without a validation split: its last evaluation), never chosen on the test set")


@dataclass(frozen=True)
class Selection:
    """best.pt's evaluation: its step, test accuracy, and how it was chosen."""

    step: int
    test_acc: float | None
    basis: str  # "val_acc" or "last epoch"
    val_acc: float | None = None

    @property
    def chosen_by(self) -> str:
        """What chose it, in a few words: 'chosen on val acc' or 'last evaluation (no val split)'."""
        return "chosen on val acc" if self.basis == "val_acc" else "last evaluation (no val split)"

    @property
    def says(self) -> str:
        """One line for a report: which checkpoint and why."""
        if self.basis == "val_acc":
            return f"best.pt: step {self.step}, the highest validation accuracy"
        return f"best.pt: step {self.step}, the last evaluation (no validation split)"


def _finite(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(s, v) for s, v in points if v is not None and math.isfinite(v)]


def selected(run: Run) -> Selection | None:
    """best.pt's evaluation, or None before the first one."""
    return choose(run.series("test_acc"), run.series("val_acc"))


def choose(test_points: Iterable[tuple[int, float]], val_points: Iterable[tuple[int, float]]) -> Selection | None:
    """best.pt's evaluation from (step, value) points of test_acc and val_acc (a run's series, or a
    viewer's tail of them), or None before the first one."""
    test = dict(_finite(list(test_points)))
    val = _finite(list(val_points))
    if val:
        step, acc = max(val, key=lambda p: (p[1], -p[0]))  # the first of the highest, as the engine keeps it
        return Selection(step, test.get(step), "val_acc", acc)
    if not test:
        return None
    step = max(test)
    return Selection(step, test[step], "last epoch")
