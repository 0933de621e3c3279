"""One metric as a line: its label, its latest value, and a sparkline as wide as the line allows."""

from __future__ import annotations

import math
from typing import Callable

from rich.text import Text
from textual.widget import Widget

from ..sparkline import sparkline

LABEL_W = 10
VALUE_W = 9


def fmt_pct(v: float) -> str:
    return f"{v:.2%}"


def fmt_g(v: float) -> str:
    return f"{v:.3g}"


def fmt_loss(v: float) -> str:
    return f"{v:.4f}"


def fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def fmt_1(v: float) -> str:
    return f"{v:.1f}"


def fmt_2(v: float) -> str:
    return f"{v:.2f}"


class TraceLine(Widget):
    """`label     value ▁▂▃▅▇` for one metric name; hidden until the metric has a value."""

    DEFAULT_CSS = """
    TraceLine { height: 1; width: 1fr; }
    """

    def __init__(self, label: str, metric: str, fmt: Callable[[float], str] = fmt_g, log: bool = False) -> None:
        super().__init__(classes="trace")
        self.label = label
        self.metric = metric
        self.fmt = fmt
        self.log_scale = log
        self.values: list[float] = []
        self.display = False

    def set_values(self, values: list[float]) -> None:
        self.values = values
        self.display = bool(values)
        self.refresh()

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def render(self) -> Text:
        width = self.size.width
        last = self.last
        value = "" if last is None else ("nan" if not math.isfinite(last) else self.fmt(last))
        text = Text(no_wrap=True, overflow="crop")
        text.append(self.label[:LABEL_W].ljust(LABEL_W), style="bold")
        text.append(value.rjust(VALUE_W))
        spark_w = width - LABEL_W - VALUE_W - 1
        if spark_w > 2 and self.values:
            text.append(" ")
            text.append(sparkline(self.values, spark_w, log=self.log_scale), style="cyan")
        return text
