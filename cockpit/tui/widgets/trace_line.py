"""One metric as a line: its label, its latest value, a sparkline as wide as the line allows, and
the range it spans (min..max), so a drawn fall says how big it is."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from cockpit.core.sparkline import span, sparkline
from engine.contracts import format_metric, metric_info

LABEL_W = 10
VALUE_W = 8


class TraceLine(Widget):
    """`label value ▁▂▃▅▇ lo‥hi` for one metric name (formatted and scaled as the metric catalogue
    says; the scale is padded so noise stays small); hidden until the metric has a value."""

    DEFAULT_CSS = """
    TraceLine { height: 1; width: 1fr; }
    """

    def __init__(self, label: str, metric: str) -> None:
        super().__init__(classes="trace")
        self.label = label
        self.label_w = LABEL_W  # the panel narrows it to its longest label
        self.range_w = 0  # and widens the range to its longest, so the ranges make a column
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

    def range_text(self) -> str:
        """min‥max of the values (what the sparkline spans)."""
        return span(self.values, self.info.fmt.endswith("%"))

    def render(self) -> Text:
        width = self.size.width
        last = self.last
        value = "" if last is None else format_metric(self.info, last)
        text = Text(no_wrap=True, overflow="crop")
        text.append(self.label[:self.label_w].ljust(self.label_w), style="bold")
        text.append(" " + value.rjust(VALUE_W))  # a value as wide as its column still stands apart from the label
        span = self.range_text().rjust(self.range_w)
        spark_w = width - self.label_w - 1 - len(value.rjust(VALUE_W)) - 2 - len(span)
        if spark_w < 4:  # too narrow for both: the range wins (it is what keeps the line honest)
            spark_w = 0
        if self.values:
            text.append(" ")
            if spark_w:
                text.append(sparkline(self.values, spark_w, log=self.log_scale, honest=True, fill=True).ljust(spark_w),
                            style="cyan")
                text.append(" ")
            text.append(span, style="dim")
        return text
