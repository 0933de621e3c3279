"""The run dashboard: progress, sparklines of every instrument, events and alarms, finishing passes;
and the keys that steer the run through its commands table."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll

from cockpit.core.actions import RunFacts, facts_of
from cockpit.core.history import History
from cockpit.core.pace import gpu_sized_notice
from cockpit.core.passes import PassOutcome
from cockpit.core.reading import CommandAnswer, Reading, RunReader
from cockpit.core.selection import Selection
from engine.store import Run, StoredResult, StoreError

from ..fold import below_fold
from ..messages import MetricsArrived
from ..refresh import next_rate, rate_text
from ..widgets.event_log import EventLog
from ..widgets.notice_line import NoticeLine
from ..widgets.results_table import ResultsTable
from ..widgets.run_bar import RunBar
from ..widgets.system_panel import SystemPanel
from ..widgets.trace_panel import TracePanel
from .base import ViewScreen
from .chart_mode import ChartMode
from .steering import Steering

# (title, id, traces as (label, metric), group prefix); formats and scales come from the metric catalogue
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("Loss", "panel-loss", [("train", "train_loss"), ("val", "val_loss"), ("test", "test_loss")], ""),
    ("Accuracy", "panel-acc", [("train", "train_acc"), ("val", "val_acc"), ("test", "test_acc"),
                               ("swa test", "swa_test_acc")], ""),
    ("Learning rate", "panel-lr", [("lr", "lr")], "lr/"),
    ("Grad norm", "panel-grad", [("global", "grad_norm")], "grad_norm/"),
    ("Activations", "panel-act", [("saturation", "act/saturation"), ("dead", "act/dead")], ""),
    ("Difficulty (per-sample loss)", "panel-diff", [(q, f"difficulty/{q}") for q in ("p10", "p50", "p90", "max")], ""),
    ("Throughput", "panel-speed", [("images/s", "images_per_s"), ("step ms", "step_time_ms"),
                                   ("data ms", "data_time_ms"), ("memory GB", "memory_gb")], ""),
]


class DashboardScreen(ChartMode, Steering, ViewScreen):
    """Watch one run (started here, headless, or by another TUI) and steer it."""

    BINDINGS = [
        Binding("p", "pause", "Pause", tooltip="Pause training at the next step (the worker keeps the model)"),
        Binding("p", "continue", "Continue", tooltip="Continue a paused run"),
        Binding("s", "stop", "Stop run", tooltip="Stop the run cleanly at the next step (asks first)"),
        Binding("c", "checkpoint", "Checkpoint", tooltip="Write the 'last' checkpoint now"),
        Binding("w", "swa", "SWA now", tooltip="Start stochastic weight averaging now (asks first)"),
        Binding("k", "calibrate", "Calibrate", tooltip="Fit a temperature on the validation split"),
        Binding("t", "tta", "TTA", tooltip="Evaluate with test-time augmentation"),
        Binding("l", "set_lr", "Set LR", tooltip="Change the LR or a group's multiplier live"),
        Binding("x", "report", "Report", tooltip="Export the run's report (html, svg, md, json)"),
        Binding("enter", "chart", "Chart", tooltip="The focused panel as a full-screen chart (Tab moves between panels)"),
        Binding("v", "open('log')", "Log", tooltip="The worker's log (worker.log), followed as it grows"),
        Binding("h", "open('hardest')", "Hardest", tooltip="The hardest test examples as thumbnails, with label, prediction and loss"),
        Binding("f", "refresh_rate", "Refresh", tooltip="Read and redraw the run less often (0.4, 1, 2, 5 s: for a slow SSH link), "
                "or more often again; the run bar shows the rate"),
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.reader: RunReader | None = None  # used by the poll thread only
        self.path: Path | None = None
        self.run_id = ""
        self.state = ""
        self.reading: Reading | None = None  # the latest reading applied to the screen
        self._polling = False
        self._damage_said = ""
        self._selected: Selection | None = None  # best.pt's evaluation, from the latest reading
        self._slow_said = ""  # the run whose GPU-sized notice was shown
        self._pending: dict[int, str] = {}
        self._lock = threading.Lock()
        self._results: dict[str, StoredResult] = {}  # the latest result of each pass
        self._seen_rows = -1
        self.replies: list[CommandAnswer] = []  # the worker's answers to commands sent from here
        self.facts = RunFacts()  # what the keys depend on (state, validation split, checkpoints)
        self.outcomes: list[PassOutcome] = []  # passes run here on a run with no worker, as they ended
        self.history = History()  # every metric since the first step, for the charts of a big terminal

    # -- layout -----------------------------------------------------------------------------

    NOTICE_ID = "dash-notice"

    def body(self) -> ComposeResult:
        yield RunBar(id="run-bar")
        with VerticalScroll(id="dash-body"):
            with Grid(id="panels"):
                for title, pid, traces, prefix in PANELS:
                    yield TracePanel(title, traces, prefix, id=pid)
                yield SystemPanel(id="panel-system")
            with Vertical(id="dash-bottom"):
                yield EventLog(id="events")
                yield ResultsTable(id="results")

    def on_mount(self) -> None:
        self._poll_timer = self.set_interval(self.app.refresh_s, self.poll)
        self.query_one(RunBar).refresh_s = self.app.refresh_s
        body = self.query_one("#dash-body")
        body.focus()
        self.watch(body, "scroll_y", lambda _: self._show_fold(), init=False)
        self.sub_title = "dashboard"

    def on_screen_resume(self) -> None:
        self._title()
        self.fit_layout()  # the terminal may have been resized while another view was shown
        self.poll()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= 150, "-wide")
        self.fit_layout()
        self._title()
        self.call_after_refresh(self._title_accuracy)
        self.call_after_refresh(self._show_fold)

    def _show_fold(self) -> None:
        """Name what is below the fold on the notice line (nothing is hidden without a word)."""
        if not self.is_mounted:
            return
        below = below_fold(self.query_one("#dash-body"), self._foldables())
        running = str(self.query_one(ResultsTable).border_subtitle or "")  # a pass's progress stays in sight
        hint = " · ".join(x for x in (running, f"▼ more below: {', '.join(below)} (PgDn)" if below else "") if x)
        self.query_one(NoticeLine).set_hint(hint)

    def _foldables(self):
        for panel in self.query(".trace-panel"):
            yield str(panel.border_title).split(" · ")[0], panel
        log = self.query_one(EventLog)
        yield (f"Events ({log.alarms} alarm{'s' if log.alarms != 1 else ''})" if log.alarms else "Events"), log
        yield "Finishing passes", self.query_one(ResultsTable)

    def action_refresh_rate(self) -> None:
        """The next rate (slower, then back to the fastest), for this view and the ones opened after it."""
        rate = self.app.refresh_s = next_rate(self.app.refresh_s)
        self._poll_timer.stop()
        self._poll_timer = self.set_interval(rate, self.poll)
        bar = self.query_one(RunBar)
        bar.refresh_s = rate
        bar.refresh()
        self.notify(f"reading the run every {rate_text(rate)}")

    # -- attaching --------------------------------------------------------------------------

    def attach(self, path: Path) -> None:
        """Watch the run at `path` (reads its store from the start)."""
        path = Path(path)
        if self.path is not None and path.resolve() == self.path.resolve():
            self.poll()
            return
        if self.reader is not None:
            old, self.reader = self.reader, None
            old.close()  # waits for a read in flight on the poll thread, if any
        try:
            reader = RunReader(Run(path))
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.path, self.reader, self.run_id = path, reader, reader.run_id
        self._selected = None
        self.state, self.reading = "", None
        self._pending.clear()
        self.replies = []
        self._results, self._seen_rows = {}, -1
        self.facts = facts_of(reader.run, path)
        if self.is_mounted:
            self._reset_widgets()
        self._title()
        self.poll()

    def forget(self, path: Path) -> None:
        """The run at `path` is gone (deleted from the runs list): stop watching it."""
        if self.path is None or Path(path).resolve() != self.path.resolve():
            return
        if self.reader is not None:
            self.reader.close()  # waits for a read in flight on the poll thread, if any
        self.reader, self.path, self.run_id, self.state, self.reading, self.facts = None, None, "", "", None, RunFacts()
        if self.is_mounted:
            self._reset_widgets()
            self.query_one(RunBar).show("", "", {}, 0, {}, None, None)
            self.refresh_bindings()
        self._title()

    def _reset_widgets(self) -> None:
        self.history.clear()
        self.draw_charts(True)
        for panel in self.query(TracePanel):
            panel.clear()
        self.query_one(EventLog).reset()
        self.query_one(ResultsTable).show({}, {})
        self.query_one(SystemPanel).show({}, {})

    def _title(self) -> None:
        """The run id in the header where it fits (the run bar always has it): never a cut header."""
        narrow = self.is_mounted and self.size.width < 100
        self.sub_title = ("dashboard · no run attached" if self.reader is None
                          else "dashboard" if narrow else f"dashboard · {self.run_id}")

    # -- polling (the read happens in a thread; widgets change on the event loop) --------------

    def poll(self) -> None:
        if self.reader is None or self._polling or not self.is_mounted:
            return
        if self not in self.app.screen_stack:  # another mode is showing: catch up when it comes back
            return
        self._polling = True
        reader = self.reader
        self.run_worker(lambda: self._read(reader), thread=True, group="poll", exit_on_error=False)

    def _read(self, reader: RunReader) -> None:
        """In the poll thread: read the store and post what was found as an immutable message."""
        with self._lock:
            pending = dict(self._pending)
        self.post_message(MetricsArrived(reader.read(pending)))

    def on_metrics_arrived(self, message: MetricsArrived) -> None:
        reading = message.reading
        self._polling = False
        if self.reader is None or reading.source != id(self.reader):
            return  # a reading of a run no longer watched
        if reading.error:
            self.query_one(RunBar).tooltip = reading.error
            if reading.damaged and reading.error != self._damage_said:
                self._damage_said = reading.error  # said once, not at every poll
                self.notify(reading.error, title="unreadable", severity="error", timeout=30)
            return
        self.reading = reading
        self._results.update((r.kind, r) for r in reading.results)
        if reading.state != self.state:
            self.state = self.facts.state = reading.state
            self.refresh_bindings()
        self._show_progress(reading)
        self.history.add(reading.points)
        if reading.new_rows:
            self._seen_rows = max(self._seen_rows, 0) + 1
            self._show_traces(reading)
            self.draw_charts()
        if reading.new_events:
            self.query_one(EventLog).add_events(reading.events)
            self._say_if_gpu_sized(reading)
        if reading.new_rows or reading.results:
            self.query_one(ResultsTable).show(self._results, reading.last)
        for answer in reading.answers:
            self._show_answer(answer)
        if reading.new_rows or reading.new_events or reading.results:
            self.call_after_refresh(self._show_fold)
        self._show_passes()

    def _say_if_gpu_sized(self, reading: Reading) -> None:
        """The worker's word that this run is GPU-sized on a CPU, once per run watched."""
        slow = gpu_sized_notice(reading.events)
        if slow is not None and self._slow_said != self.run_id:
            self._slow_said = self.run_id
            self.notify(slow["message"], title="GPU-sized on a CPU", severity="warning", timeout=30)

    def _show_progress(self, reading: Reading) -> None:
        meta = reading.meta
        started, ended = meta.get("started"), meta.get("ended")
        elapsed = (ended - started) if started and ended else None
        self.query_one(RunBar).show(self.run_id, reading.state, dict(meta), reading.step, dict(reading.last),
                                    reading.eta if reading.active else None, elapsed)
        self.query_one(SystemPanel).show(meta, reading.last)

    def _show_traces(self, reading: Reading) -> None:
        for panel in self.query(TracePanel):
            panel.update_from(reading.series)
        if reading.selected is not None:
            self._selected = reading.selected
        self.call_after_refresh(self._title_accuracy)  # once laid out: the title's form depends on the width

    def _title_accuracy(self) -> None:
        """best.pt's test accuracy and what chose it, never the highest test accuracy (that is test-set peeking)."""
        sel, acc = self._selected, self.query_one("#panel-acc", TracePanel)
        if sel is None or sel.test_acc is None:
            acc.border_title = "Accuracy"
            return
        full = f"Accuracy · best.pt test {sel.test_acc:.2%} ({sel.chosen_by})"
        short = f"Acc · best.pt test {sel.test_acc:.2%} ({'by val' if sel.basis == 'val_acc' else 'last eval'})"
        acc.border_title = full if len(full) + 6 <= acc.outer_size.width else short  # whole, never cut

    def _show_answer(self, answer: CommandAnswer) -> None:
        with self._lock:
            self._pending.pop(answer.cid, None)
        self.replies.append(answer)
        self.query_one(EventLog).add_reply(answer.kind, answer.status, answer.reply)
        if answer.status == "done":
            self.notify(f"{answer.kind}: {answer.reply or 'done'}", title="worker replied")
        elif answer.status == "failed":
            self.notify(f"{answer.kind} failed: {answer.reply}", title="worker replied", severity="error", timeout=8)
        elif answer.status == "expired":
            self.notify(f"{answer.kind} withdrawn: {answer.reply}", severity="warning", timeout=10)
        else:
            self.notify(f"{answer.kind}: no reply ({answer.reply})", severity="warning")

    def on_unmount(self) -> None:
        if self.reader is not None:
            self.reader.close()

