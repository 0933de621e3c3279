"""One metric as a line: its label, its latest value, and a sparkline as wide as the line allows."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from cockpit.core.sparkline import sparkline
from engine.contracts import format_metric, metric_info

LABEL_W = 10
VALUE_W = 9


class TraceLine(Widget):
    """`label     value ▁▂▃▅▇` for one metric name (formatted and scaled as the metric catalogue says);
    hidden until the metric has a value."""

    DEFAULT_CSS = """
    TraceLine { height: 1; width: 1fr; }
    """

    def __init__(self, label: str, metric: str) -> None:
        super().__init__(classes="trace")
        self.label = label
        self.metric = metric
        self.info = metric_info(metric)
        self.log_scale = self.info.log
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
        value = "" if last is None else format_metric(self.info, last)
        text = Text(no_wrap=True, overflow="crop")
        text.append(self.label[:LABEL_W].ljust(LABEL_W), style="bold")
        text.append(value.rjust(VALUE_W))
        spark_w = width - LABEL_W - VALUE_W - 1
        if spark_w > 2 and self.values:
            text.append(" ")
            text.append(sparkline(self.values, spark_w, log=self.log_scale), style="cyan")
        return text
