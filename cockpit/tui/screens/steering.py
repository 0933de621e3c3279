"""The dashboard's keys that steer a run: commands written for its worker (pause, stop, SWA, set LR...),
finishing passes on a run with no worker, the report, and the views opened from the dashboard (chart,
log, hardest examples). A key that cannot act says why instead of doing nothing."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from textual.binding import Binding

from cockpit.core.actions import RunFacts, needs_live, why_not
from cockpit.core.lr_now import LRNow
from cockpit.core.passes import PassOutcome
from cockpit.core.reading import Reading
from engine.contracts import Calibrate, Checkpoint, Command, Continue, Pause, SetLR, StartSWA, Stop, TTA
from engine.store import ACTIVE_STATES, StoreError

from ..jobs import export_report, run_pass, send_command
from ..widgets.results_table import ResultsTable
from ..widgets.system_panel import SystemPanel
from ..widgets.trace_panel import TracePanel
from .dialogs import ConfirmScreen, SetLRScreen

STEERING = ("pause", "continue", "stop", "checkpoint", "swa", "calibrate", "tta", "set_lr")


class Steering:
    """The dashboard's key actions (a mixin of DashboardScreen, which has the bindings and the run's state)."""

    path: Path | None
    run_id: str
    state: str
    reading: Reading | None
    facts: RunFacts
    outcomes: list[PassOutcome]

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
        actions = [b.action for b in Binding.make_bindings(self.BINDINGS) if b.key == event.key]
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

        self.app.push_screen(SetLRScreen(self._lr_now(), groups), answered)

    def _lr_now(self) -> LRNow | None:
        """The base LR and the schedule's factor now (None where the store cannot say: the dialog then says
        what the value means without numbers)."""
        from cockpit.core.lr_now import read_lr_now

        if self.path is None:
            return None
        try:
            return read_lr_now(self.path)
        except (StoreError, OSError, ValueError, sqlite3.Error):  # a locked or damaged store: the dialog still works
            return None

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
