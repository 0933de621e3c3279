"""The run dashboard: progress, sparklines of every instrument, events and alarms, finishing passes;
and the keys that steer the run through its commands table."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header

from cockpit.core.actions import RunFacts, facts_of, needs_live, why_not
from cockpit.core.passes import PassOutcome
from cockpit.core.reading import CommandAnswer, Reading, RunReader
from engine.contracts import Calibrate, Checkpoint, Command, Continue, Pause, ResultModel, SetLR, StartSWA, Stop, TTA
from engine.store import ACTIVE_STATES, Run, StoreError

from ..messages import MetricsArrived
from ..widgets.event_log import EventLog
from ..fold import below_fold
from ..jobs import export_report, run_pass, send_command
from ..widgets.key_footer import KeyFooter
from ..widgets.notice_line import NoticeLine
from ..widgets.results_table import ResultsTable
from ..widgets.run_bar import RunBar
from ..widgets.system_panel import SystemPanel
from ..widgets.trace_panel import TracePanel
from .dialogs import ConfirmScreen, SetLRScreen

POLL_S = 0.4  # the store is read (new rows only) this often: well over twice a second

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
STEERING = ("pause", "continue", "stop", "checkpoint", "swa", "calibrate", "tta", "set_lr")


class DashboardScreen(Screen):
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
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.reader: RunReader | None = None  # used by the poll thread only
        self.path: Path | None = None
        self.run_id = ""
        self.state = ""
        self.reading: Reading | None = None  # the latest reading applied to the screen
        self._polling = False
        self._pending: dict[int, str] = {}
        self._lock = threading.Lock()
        self._results: list[ResultModel] = []
        self._seen_rows = -1
        self.replies: list[CommandAnswer] = []  # the worker's answers to commands sent from here
        self.facts = RunFacts()  # what the keys depend on (state, validation split, checkpoints)
        self.outcomes: list[PassOutcome] = []  # passes run here on a run with no worker, as they ended

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunBar(id="run-bar")
        with VerticalScroll(id="dash-body"):
            with Grid(id="panels"):
                for title, pid, traces, prefix in PANELS:
                    yield TracePanel(title, traces, prefix, id=pid)
                yield SystemPanel(id="panel-system")
            with Vertical(id="dash-bottom"):
                yield EventLog(id="events")
                yield ResultsTable(id="results")
        yield NoticeLine(id="dash-notice")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.poll)
        body = self.query_one("#dash-body")
        body.focus()
        self.watch(body, "scroll_y", lambda _: self._show_fold(), init=False)
        self.sub_title = "dashboard"

    def on_screen_resume(self) -> None:
        self._title()
        self.poll()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= 150, "-wide")
        self._title()
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
        self.state, self.reading = "", None
        self._pending.clear()
        self.replies = []
        self._results, self._seen_rows = [], -1
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
        for panel in self.query(TracePanel):
            panel.clear()
        self.query_one(EventLog).reset()
        self.query_one(ResultsTable).show([], {})
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
            return
        self.reading = reading
        self._results.extend(reading.results)
        if reading.state != self.state:
            self.state = self.facts.state = reading.state
            self.refresh_bindings()
        self._show_progress(reading)
        if reading.new_rows:
            self._seen_rows = max(self._seen_rows, 0) + 1
            self._show_traces(reading)
        if reading.new_events:
            self.query_one(EventLog).add_events(reading.events)
        if reading.new_rows or reading.results:
            self.query_one(ResultsTable).show(self._results, reading.last)
        for answer in reading.answers:
            self._show_answer(answer)
        if reading.new_rows or reading.new_events or reading.results:
            self.call_after_refresh(self._show_fold)
        self._show_passes()

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
        best = max(reading.series.get("test_acc", ()), default=None)
        acc = self.query_one("#panel-acc", TracePanel)
        acc.border_title = f"Accuracy · best test {best:.2%}" if best is not None else "Accuracy"

    def _show_answer(self, answer: CommandAnswer) -> None:
        with self._lock:
            self._pending.pop(answer.cid, None)
        self.replies.append(answer)
        self.query_one(EventLog).add_reply(answer.kind, answer.status, answer.reply)
        if answer.status == "done":
            self.notify(f"{answer.kind}: {answer.reply or 'done'}", title="worker replied")
        elif answer.status == "failed":
            self.notify(f"{answer.kind} failed: {answer.reply}", title="worker replied", severity="error", timeout=8)
        else:
            self.notify(f"{answer.kind}: no reply ({answer.reply})", severity="warning")

    # -- steering ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "continue":
            return True if self.state == "paused" else False
        if action == "pause" and self.state == "paused":
            return False  # p means continue now
        if action in STEERING:
            if why_not(action, self.facts) is None:
                return True
            # a run that has ended hides the live-only keys; any other refusal shows dimmed. Either way
            # pressing the key says why (on_key)
            return False if needs_live(action) and self.state not in ACTIVE_STATES else None
        if action in ("report", "open", "chart"):
            return True if self.reader is not None else None
        return True

    def on_key(self, event) -> None:
        """A key whose action cannot run here says why (a footer key is never silently dead)."""
        bindings = self._bindings.key_to_bindings.get(event.key, ())
        actions = [b.action for b in bindings]
        if not actions or any(self.check_action(a, ()) for a in actions):
            return
        reason = next((r for r in (why_not(a, self.facts) for a in actions) if r), None)
        if reason is None and self.reader is None:
            reason = "no run attached: r lists the runs"
        if reason:
            event.stop()
            event.prevent_default()
            self.notify(reason, title=event.key, severity="warning", timeout=4)

    def send(self, command: Command) -> None:
        """Write a command for the worker (in a thread); its reply shows up as a notice."""
        if self.path is None:
            return

        def sent(cid: int) -> None:
            with self._lock:
                self._pending[cid] = command.kind

        send_command(self.app, self.path, command, sent)

    def action_pause(self) -> None:
        self.send(Pause())

    def action_continue(self) -> None:
        self.send(Continue())

    def action_stop(self) -> None:
        self._ask_then_send(f"Stop run {self.run_id}?", "The worker stops at the next step boundary, writes the "
                            "'last' checkpoint and records the run as stopped. (Quitting the TUI with q does not "
                            "stop the run.)", "stop the run", Stop(reason="stopped from the TUI"))

    def action_checkpoint(self) -> None:
        self.send(Checkpoint())

    def action_swa(self) -> None:
        self._ask_then_send("Start SWA now?", "Weights are averaged from now on and the LR anneals to the SWA LR "
                            "for the rest of the run; this cannot be undone.", "start SWA", StartSWA())

    def _ask_then_send(self, question: str, detail: str, yes: str, command: Command) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                self.send(command)

        self.app.push_screen(ConfirmScreen(question, detail, yes=yes), answered)

    def action_calibrate(self) -> None:
        self._finishing_pass("calibrate", Calibrate())

    def action_tta(self) -> None:
        self._finishing_pass("tta", TTA())

    def _finishing_pass(self, kind: str, command: Command) -> None:
        """A live run: the worker computes it; otherwise a child process loads the checkpoint (no torch here)."""
        if self.state in ACTIVE_STATES:
            self.send(command)
            return
        if self.path is None:
            return
        self.facts.running[kind] = time.monotonic()
        self.refresh_bindings()
        run_pass(self.app, kind, self.path, self._pass_ended)
        self.notify(f"{kind} started on {self.run_id}'s checkpoint (in its own process)", timeout=3)
        self._show_passes()

    def _pass_ended(self, outcome: PassOutcome) -> None:
        self.facts.running.pop(outcome.kind, None)
        self.outcomes.append(outcome)
        self.refresh_bindings()
        self._show_passes()
        if outcome.ok:
            self.notify(f"{outcome.kind}: {outcome.message}; its row is in Finishing passes", title="pass finished")
            self.poll()
        else:
            self.notify(f"{outcome.kind} failed: {outcome.message}", severity="error", timeout=10)

    def _show_passes(self) -> None:
        """Passes running here show in the Finishing passes title, with their time so far."""
        running = " · ".join(f"{k} running {time.monotonic() - t0:.0f} s…" for k, t0 in self.facts.running.items())
        self.query_one(ResultsTable).border_subtitle = running
        self._show_fold()

    def action_set_lr(self) -> None:
        if self.reading is None:
            return
        groups = [n[3:] for n in self.reading.last if n.startswith("lr/")]

        def answered(choice: tuple[str | None, float] | None) -> None:
            if not choice:
                return
            layer, value = choice
            self.send(SetLR(layer=layer, mult=value) if layer else SetLR(lr=value))

        self.app.push_screen(SetLRScreen(self.reading.last.get("lr"), groups), answered)

    def action_report(self) -> None:
        if self.path is not None:
            export_report(self.app, self.path)

    def action_chart(self) -> None:
        from .chart import ChartScreen, panel_lines  # plotext is loaded when a chart is first opened

        if self.path is not None:
            panel = self.focused if isinstance(self.focused, (TracePanel, SystemPanel)) else self.query_one(TracePanel)
            self.app.push_screen(ChartScreen(self.path, *panel_lines(panel, self.reading.last if self.reading else {})))

    def action_open(self, view: str) -> None:
        """v: the worker's log; h: the hardest examples (each screen is loaded when first opened)."""
        from .hardest import HardestScreen
        from .log import LogScreen

        if self.path is not None:
            self.app.push_screen({"log": LogScreen, "hardest": HardestScreen}[view](self.path))

    def on_unmount(self) -> None:
        if self.reader is not None:
            self.reader.close()

