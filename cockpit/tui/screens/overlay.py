"""The runs marked in the runs list, one metric's curves overlaid in one chart, live: runs still
training keep growing (each is tailed, new rows only). The legend names each run by its letter from
the runs list, its colour, id, state, latest value and the spec fields in which it differs from the
others. m/M pick the metric, x steps or epochs, y a log axis."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static
from textual_plotext import PlotextPlot

from cockpit.core.formats import STATE_MARK
from cockpit.core.history import History, extremes
from cockpit.core.overlay import RunPoll, RunsFollower, differing_fields, flat_spec
from engine.contracts import format_metric, metric_info
from engine.store import ACTIVE_STATES

from ..plotting import PALETTE, axes, fresh, line_style
from .base import PushedView

MIN_POLL_S = 1.0  # several runs are read per poll: not faster than this, whatever the refresh rate
# the metrics m cycles through (those some run has), in the order a reader wants them
METRICS = ("test_acc", "train_loss", "val_acc", "test_loss", "val_loss", "train_acc", "lr", "grad_norm",
           "act/saturation", "act/dead", "images_per_s", "step_time_ms", "memory_gb", "swa_test_acc")


@dataclass
class Followed:
    """One overlaid run, as the screen knows it."""

    letter: str
    run_id: str
    fields: dict[str, str]  # the spec fields in which it differs from the others
    history: History = field(default_factory=History)
    state: str = ""
    steps_per_epoch: int = 0
    error: str = ""


class OverlayScreen(PushedView):
    """One chart of the marked runs' curves (the letters are the runs list's marks)."""

    BINDINGS = [
        Binding("escape,q", "close", "Back", tooltip="Back to the runs list"),
        Binding("m", "metric(1)", "Next curve", tooltip="Overlay the next metric's curves"),
        Binding("M", "metric(-1)", "Prev curve", tooltip="Overlay the previous metric's curves"),
        Binding("x", "x_axis", "Step/epoch", tooltip="Steps or epochs on the x axis (epochs line up runs with other batch sizes)"),
        Binding("y", "log", "Log/lin", tooltip="Toggle a log or linear y axis"),
    ]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(classes="overlay-screen")
        paths = [Path(p) for p in paths]
        self.follower = RunsFollower(paths)
        fields = differing_fields([flat_spec(p) for p in paths])
        self.runs = [Followed(chr(65 + i) if i < 26 else str(i + 1), p.name, f) for i, (p, f) in enumerate(zip(paths, fields))]
        self.metric = ""
        self.log_y = False
        self.by_epoch = True
        self._polling = False
        self._drawn = False

    def body(self) -> ComposeResult:
        yield Static("reading the runs…", id="ov-head")
        yield PlotextPlot(id="ov-chart")
        yield Static("", id="ov-legend")

    def on_mount(self) -> None:
        self.sub_title = f"overlay · {len(self.runs)} runs"
        self.poll()
        self.set_interval(max(MIN_POLL_S, getattr(self.app, "refresh_s", MIN_POLL_S)), self.poll)

    def on_unmount(self) -> None:
        self.follower.close()  # waits for a poll in flight, if any

    # -- reading (a thread) and applying (the event loop) ---------------------------------------

    def poll(self) -> None:
        if self._polling or (self.runs and all(r.state and r.state not in ACTIVE_STATES for r in self.runs)):
            return  # every run has ended: nothing more will come
        self._polling = True
        follower = self.follower
        self.run_worker(lambda: self.app.call_from_thread(self._apply, follower.poll()), thread=True,
                        group="overlay", exit_on_error=False)

    def _apply(self, polls: list[RunPoll]) -> None:
        self._polling = False
        if not self.is_mounted:  # closed while the poll was in flight
            return
        grew = False
        for run, got in zip(self.runs, polls):
            run.error = got.error
            if got.error:
                continue
            run.state, run.steps_per_epoch = got.state, got.steps_per_epoch
            run.history.add(got.points)
            grew = grew or bool(got.points)
        if not self.metric or self.metric not in self.metrics:
            self.metric = next(iter(self.metrics), "")
            self.log_y = bool(self.metric) and metric_info(self.metric).log
        if grew or not self._drawn:
            self.draw()
        else:
            self._legend()

    @property
    def metrics(self) -> list[str]:
        have = {n for r in self.runs for n in r.history.names()}
        return [m for m in METRICS if m in have]

    # -- drawing ------------------------------------------------------------------------------

    @property
    def unit(self) -> str:
        """epoch where asked for and every readable run knows its epoch length, else step."""
        return "epoch" if self.by_epoch and all(r.steps_per_epoch for r in self.runs if not r.error) else "step"

    def curve(self, run: Followed) -> tuple[list[float], list[float]]:
        """The run's points of the shown metric: x in the unit, percentages in percent."""
        info = metric_info(self.metric)
        scale = 100.0 if info.fmt.endswith("%") else 1.0
        spe = run.steps_per_epoch if self.unit == "epoch" else 0
        pts = [(s / spe if spe else s, v * scale) for s, v in run.history.points(self.metric) if v > 0 or not self.log_y]
        return [x for x, _ in pts], [y for _, y in pts]

    def draw(self) -> None:
        self._drawn = True
        plot = self.query_one(PlotextPlot)
        unit = self.unit
        plt = fresh(plot, "", self.log_y, unit)
        columns = max(plot.size.width - 8, 10)
        lows, highs, x_hi = [], [], 0.0
        for i, run in enumerate(self.runs):
            xs, ys = self.curve(run)
            if not xs:
                continue
            kept = extremes(list(zip(xs, ys)), columns)
            marker, _ = line_style(i, self.app.no_color, run.letter)
            plt.plot([x for x, _ in kept], [y for _, y in kept], marker=marker, color=PALETTE[i % len(PALETTE)])
            lows.append(min(ys))
            highs.append(max(ys))
            x_hi = max(x_hi, xs[-1])
        if lows:
            axes(plt, x_hi, min(lows), max(highs), self.log_y and min(lows) > 0, metric_info(self.metric).fmt.endswith("%"),
                 plot.size.height, whole_x=unit == "step")
        self._head(unit, bool(lows))
        self._legend()
        plot.refresh()

    def _head(self, unit: str, drawn: bool) -> None:
        names = self.metrics
        text = Text(no_wrap=True, overflow="ellipsis")
        if not self.metric:
            text.append("no metrics recorded yet in these runs", style="dim")
        else:
            where = f"{names.index(self.metric) + 1}/{len(names)}" if self.metric in names else ""
            text.append(metric_info(self.metric).label, style="bold")
            text.append(f" ({where}, m: next) · by {unit} · y {'log' if self.log_y else 'linear'}")
            if any(r.state in ACTIVE_STATES for r in self.runs):
                text.append(" · live")
            if not drawn:
                text.append(" · no points yet", style="bold")
        self.query_one("#ov-head", Static).update(text)

    def _legend(self) -> None:
        """A line per run; where the differing fields do not fit beside the id, they go on a second line."""
        info = metric_info(self.metric) if self.metric else None
        width = max(self.size.width - 2, 20)
        id_w = max((len(r.run_id) for r in self.runs), default=0)
        lines = []
        for i, run in enumerate(self.runs):
            line = Text()
            line.append(f"{run.letter} ", style="bold")
            if not self.app.no_color:  # without colour the line is drawn with the run's letter itself
                line.append(f"{line_style(i, False)[1]} ", style=Style(color=Color.from_rgb(*PALETTE[i % len(PALETTE)])))
            line.append(f"{STATE_MARK.get(run.state, '?')} {run.run_id:<{id_w}}")
            if run.error:
                line.append(f"  cannot read: {run.error}", style="bold red")
            else:
                pts = run.history.points(self.metric) if self.metric else []
                if info is not None:
                    line.append(f"  {format_metric(info, pts[-1][1]) if pts else '–':>8}", style="bold")
                fields = " · ".join(f"{k}={v}" for k, v in run.fields.items()) or "(the same spec as the others)"
                if len(line) + 2 + len(fields) > width:
                    lines.append(line)
                    line = Text("    ")
                else:
                    line.append("  ")
                line.append(fields)
            lines.append(line)
        legend = Text("\n").join(lines)
        legend.no_wrap, legend.overflow = True, "ellipsis"
        self.query_one("#ov-legend", Static).update(legend)

    # -- keys ---------------------------------------------------------------------------------

    def action_metric(self, step: int) -> None:
        names = self.metrics
        if not names:
            self.notify("no metrics recorded yet in these runs", severity="warning")
            return
        at = names.index(self.metric) if self.metric in names else 0
        self.metric = names[(at + step) % len(names)]
        self.log_y = metric_info(self.metric).log
        self.draw()

    def action_x_axis(self) -> None:
        self.by_epoch = not self.by_epoch
        self.draw()

    def action_log(self) -> None:
        self.log_y = not self.log_y
        self.draw()
