"""The run dashboard: progress, sparklines of every instrument, events and alarms, finishing passes;
and the keys that steer the run through its commands table."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header

from engine.store import ACTIVE_STATES, Run, StoreError

from ..tail import RunTail
from ..widgets.event_log import EventLog
from ..widgets.key_footer import KeyFooter
from ..widgets.messages import CommandAnswer, MetricsArrived, Reading
from ..widgets.results_table import ResultsTable
from ..widgets.run_bar import RunBar
from ..widgets.trace_line import fmt_1, fmt_2, fmt_g, fmt_int, fmt_loss, fmt_pct
from ..widgets.trace_panel import TracePanel
from .dialogs import ConfirmScreen, SetLRScreen

POLL_S = 0.4  # the store is read (new rows only) this often: well over twice a second

# (title, id, traces, group prefix, group format, group log scale)
PANELS: list[tuple[str, str, list, str, Any, bool]] = [
    ("Loss", "panel-loss", [("train", "train_loss", fmt_loss, False), ("val", "val_loss", fmt_loss, False),
                            ("test", "test_loss", fmt_loss, False)], "", fmt_g, False),
    ("Accuracy", "panel-acc", [("train", "train_acc", fmt_pct, False), ("val", "val_acc", fmt_pct, False),
                               ("test", "test_acc", fmt_pct, False), ("swa test", "swa_test_acc", fmt_pct, False)],
     "", fmt_g, False),
    ("Learning rate", "panel-lr", [("lr", "lr", fmt_g, False)], "lr/", fmt_g, False),
    ("Grad norm", "panel-grad", [("global", "grad_norm", fmt_g, True)], "grad_norm/", fmt_g, True),
    ("Activations", "panel-act", [("saturation", "act/saturation", fmt_pct, False), ("dead", "act/dead", fmt_pct, False)],
     "", fmt_g, False),
    ("Difficulty (per-sample loss)", "panel-diff", [("p10", "difficulty/p10", fmt_g, False),
                                                    ("p50", "difficulty/p50", fmt_g, False),
                                                    ("p90", "difficulty/p90", fmt_g, False),
                                                    ("max", "difficulty/max", fmt_g, False)], "", fmt_g, False),
    ("Throughput", "panel-speed", [("images/s", "images_per_s", fmt_int, False), ("step ms", "step_time_ms", fmt_1, False),
                                   ("data ms", "data_time_ms", fmt_1, False), ("memory GB", "memory_gb", fmt_2, False)],
     "", fmt_g, False),
]

LIVE = ("pause", "resume", "stop", "checkpoint", "swa", "calibrate", "tta", "set_lr")


class DashboardScreen(Screen):
    """Watch one run (started here, headless, or by another TUI) and steer it."""

    BINDINGS = [
        Binding("p", "pause", "Pause", tooltip="Pause training at the next step (the worker keeps the model)"),
        Binding("p", "resume", "Resume", tooltip="Resume a paused run"),
        Binding("s", "stop", "Stop run", tooltip="Stop the run cleanly at the next step (asks first)"),
        Binding("c", "checkpoint", "Checkpoint", tooltip="Write the 'last' checkpoint now"),
        Binding("w", "swa", "SWA now", tooltip="Start stochastic weight averaging now (asks first)"),
        Binding("k", "calibrate", "Calibrate", tooltip="Fit a temperature on the validation split"),
        Binding("t", "tta", "TTA", tooltip="Evaluate with test-time augmentation"),
        Binding("l", "set_lr", "Set LR", tooltip="Change the LR or a group's multiplier live"),
        Binding("x", "report", "Report", tooltip="Export the run's report (html, svg, md, json)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.tail: RunTail | None = None
        self.path: Path | None = None
        self.state = ""
        self._polling = False
        self._pending: dict[int, str] = {}
        self._lock = threading.Lock()
        self._results: list[dict[str, Any]] = []
        self._result_id = 0
        self._seen_rows = -1
        self.replies: list[CommandAnswer] = []  # the worker's answers to commands sent from here

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunBar(id="run-bar")
        with VerticalScroll(id="dash-body"):
            with Grid(id="panels"):
                for title, pid, traces, prefix, pfmt, plog in PANELS:
                    yield TracePanel(title, traces, prefix, pfmt, plog, id=pid)
            with Vertical(id="dash-bottom"):
                yield EventLog(id="events")
                yield ResultsTable(id="results")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self.poll)
        self.query_one("#dash-body").focus()
        self.sub_title = "dashboard"

    def on_screen_resume(self) -> None:
        self._title()
        self.poll()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= 150, "-wide")

    # -- attaching --------------------------------------------------------------------------

    def attach(self, path: Path) -> None:
        """Watch the run at `path` (reads its store from the start)."""
        path = Path(path)
        if self.path is not None and path.resolve() == self.path.resolve():
            self.poll()
            return
        if self.tail is not None:
            old = self.tail
            self.tail = None
            # the poll thread may still hold the old connection for a moment: close it when idle
            self.set_timer(2.0, old.run.close)
        try:
            run = Run(path)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.path = path
        self.tail = RunTail(run)
        self.state = ""
        self._pending.clear()
        self.replies = []
        self._results, self._result_id, self._seen_rows = [], 0, -1
        if self.is_mounted:
            self._reset_widgets()
        self._title()
        self.poll()

    def _reset_widgets(self) -> None:
        for panel in self.query(TracePanel):
            panel.clear()
        self.query_one(EventLog).reset()
        self.query_one(ResultsTable).show([], {})

    def _title(self) -> None:
        if self.tail is None:
            self.sub_title = "dashboard · no run attached"
        else:
            self.sub_title = f"dashboard · {self.tail.run.run_id}"

    # -- polling (the read happens in a thread; widgets change on the event loop) --------------

    def poll(self) -> None:
        if self.tail is None or self._polling or not self.is_mounted:
            return
        if self not in self.app.screen_stack:  # another mode is showing: catch up when it comes back
            return
        self._polling = True
        tail = self.tail
        self.run_worker(lambda: self._read(tail), thread=True, group="poll", exit_on_error=False)

    def _read(self, tail: RunTail) -> None:
        try:
            before = tail.last_metric_id
            events_before = len(tail.events)
            snap = tail.poll()
            new_rows = tail.last_metric_id != before or self._seen_rows < 0
            con = tail.run.con
            rows = con.execute("SELECT * FROM results WHERE id > ? AND kind != 'hardest' ORDER BY id",
                               (self._result_id,)).fetchall()
            results = [dict(r) for r in rows]
            answers = []
            with self._lock:
                pending = list(self._pending.items())
            for cid, kind in pending:
                row = tail.run.command(cid)
                if row is not None and row["status"] != "pending":
                    answers.append(CommandAnswer(cid, kind, row["status"], row["reply"]))
                elif snap.state not in ACTIVE_STATES:
                    answers.append(CommandAnswer(cid, kind, "unanswered", f"the run is {snap.state}"))
            reading = Reading(snap.state, new_rows, len(tail.events) != events_before or self._seen_rows < 0,
                              results, answers, eta=tail.eta_seconds() if snap.active else None)
        except Exception as exc:  # a locked or vanished store must not take the UI down
            reading = Reading("", False, False, error=f"{type(exc).__name__}: {exc}")
        reading.source = id(tail)
        self.post_message(MetricsArrived(reading))

    def on_metrics_arrived(self, message: MetricsArrived) -> None:
        reading = message.reading
        self._polling = False
        tail = self.tail
        if tail is None or reading.source != id(tail):
            return
        if reading.error:
            self.query_one(RunBar).tooltip = reading.error
            return
        for r in reading.results:
            self._result_id = max(self._result_id, r["id"])
            try:
                r["data"] = json.loads(r["data"]) if isinstance(r["data"], str) else r["data"]
            except ValueError:
                r["data"] = {}
            self._results.append(r)
        snap = tail.snapshot
        if reading.state != self.state:
            self.state = reading.state
            self.refresh_bindings()
        started, ended = snap.meta.get("started"), snap.meta.get("ended")
        elapsed = (ended - started) if started and ended else None
        eta = reading.eta if reading.eta is not None else tail.eta_seconds()
        self.query_one(RunBar).show(tail.run.run_id, snap.state, snap.meta, snap.step, snap.last,
                                    eta if snap.active else None, elapsed)
        if reading.new_rows:
            self._seen_rows = max(self._seen_rows, 0) + 1
            names = list(tail.series.keys())
            for panel in self.query(TracePanel):
                panel.update_from(names, tail.values)
            best = max(tail.values("test_acc"), default=None)
            acc = self.query_one("#panel-acc", TracePanel)
            acc.border_title = f"Accuracy · best test {best:.2%}" if best is not None else "Accuracy"
        if reading.new_events:
            self.query_one(EventLog).add_events(snap.events)
        if reading.new_rows or reading.results:
            self.query_one(ResultsTable).show(self._results, snap.last)
        for ans in reading.answers:
            with self._lock:
                self._pending.pop(ans.cid, None)
            self.replies.append(ans)
            self.query_one(EventLog).add_reply(ans.kind, ans.status, ans.reply)
            if ans.status == "done":
                self.notify(f"{ans.kind}: {ans.reply or 'done'}", title="worker replied")
            elif ans.status == "failed":
                self.notify(f"{ans.kind} failed: {ans.reply}", title="worker replied", severity="error", timeout=8)
            else:
                self.notify(f"{ans.kind}: no reply ({ans.reply})", severity="warning")

    # -- steering ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume":
            return True if self.state == "paused" else False
        if action == "pause":
            if self.state == "paused":
                return False
            return True if self.state in ("created", "running") else None
        if action in LIVE:
            return True if self.state in ACTIVE_STATES else None
        if action == "report":
            return True if self.tail is not None else None
        return True

    def send(self, kind: str, **args: Any) -> None:
        """Write a command for the worker (in a thread); its reply shows up in a notification."""
        if self.path is None:
            return
        path = self.path

        def write() -> None:
            try:
                run = Run(path)
                try:
                    cid = run.send_command(kind, source="tui", **args)
                finally:
                    run.close()
            except Exception as exc:
                self.app.call_from_thread(self.notify, f"{kind}: cannot send ({exc})", severity="error")
                return
            with self._lock:
                self._pending[cid] = kind

        self.run_worker(write, thread=True, group="commands", exit_on_error=False)
        self.notify(f"sent {kind}" + (f" {args}" if args else ""), timeout=2)

    def action_pause(self) -> None:
        self.send("pause")

    def action_resume(self) -> None:
        self.send("resume")

    def action_stop(self) -> None:
        run_id = self.tail.run.run_id if self.tail else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self.send("stop", reason="stopped from the TUI")

        self.app.push_screen(ConfirmScreen(
            f"Stop run {run_id}?",
            "The worker stops at the next step boundary, writes the 'last' checkpoint and records the run as "
            "stopped. (Quitting the TUI with q does not stop the run.)", yes="stop the run"), answered)

    def action_checkpoint(self) -> None:
        self.send("checkpoint")

    def action_swa(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.send("swa")

        self.app.push_screen(ConfirmScreen(
            "Start SWA now?", "Weights are averaged from now on and the LR anneals to the SWA LR for the rest "
            "of the run; this cannot be undone.", yes="start SWA"), answered)

    def action_calibrate(self) -> None:
        self.send("calibrate")

    def action_tta(self) -> None:
        self.send("tta")

    def action_set_lr(self) -> None:
        if self.tail is None:
            return
        groups = [n[3:] for n in self.tail.series if n.startswith("lr/")]
        current = self.tail.snapshot.last.get("lr")

        def answered(choice: tuple[str | None, float] | None) -> None:
            if not choice:
                return
            layer, value = choice
            if layer:
                self.send("set_lr", layer=layer, mult=value)
            else:
                self.send("set_lr", lr=value)

        self.app.push_screen(SetLRScreen(current, groups), answered)

    def action_report(self) -> None:
        if self.path is None:
            return
        path = self.path

        def export() -> None:
            try:
                from ..report import write_report  # written alongside; loaded only when asked for
            except ImportError as exc:
                self.app.call_from_thread(self.notify, f"report export is not available in this build ({exc})",
                                          severity="warning", timeout=8)
                return
            run = Run(path)
            try:
                t0 = time.monotonic()
                paths = write_report(run)
                took = time.monotonic() - t0
            except Exception as exc:
                self.app.call_from_thread(self.notify, f"report failed: {type(exc).__name__}: {exc}",
                                          severity="error", timeout=10)
                return
            finally:
                run.close()
            names = ", ".join(p.name for p in paths)
            folder = paths[0].parent if paths else path
            self.app.call_from_thread(self.notify, f"{names} in {folder} ({took:.1f} s)", title="report written",
                                      timeout=10)

        self.notify("writing the report…", timeout=2)
        self.run_worker(export, thread=True, group="report", exit_on_error=False)

    def on_unmount(self) -> None:
        if self.tail is not None:
            self.tail.run.close()
