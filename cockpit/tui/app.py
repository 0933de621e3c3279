"""The cockpit TUI: `cockpit` with no subcommand opens it.

Four views, one per mode, switched with e / r / d / W: the spec editor (edit, load, save, launch),
the runs list, the dashboard of one run, the sweeps. The worker is another process; the TUI only reads
the run store and writes commands, so quitting never stops a run (stopping is its own key, confirmed).
Nothing here imports torch. Opens fast: the first view is chosen before the app starts and is its first
mode (no detour through a blank screen); the other views' modules are imported when first shown.
"""

from __future__ import annotations

import subprocess
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.notifications import Notification, Notify, SeverityLevel

from engine.store import StoreError, active_runs, resolve_run

from .messages import RunChosen, RunStarted
from .refresh import DEFAULT_S
from .screens.editor import SpecEditorScreen

if TYPE_CHECKING:
    from .screens.dashboard import DashboardScreen
    from .screens.runs import RunsScreen
    from .screens.sweep import SweepScreen

VIEWS = {"editor": "spec editor", "runs": "runs list", "dashboard": "dashboard", "sweeps": "sweeps"}


class CockpitApp(App):
    """Edit a run spec, launch it in a worker process, watch and steer it."""

    TITLE = "Training Cockpit"
    CSS_PATH = Path(__file__).resolve().parent / "cockpit.tcss"  # package data: cockpit/tui/*.tcss
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("e,f2", "view('editor')", "Editor", tooltip="The spec editor: edit, load, save, launch"),
        Binding("r,f3", "view('runs')", "Runs", tooltip="Every run in the runs dir"),
        Binding("d,f4", "view('dashboard')", "Dashboard", tooltip="The dashboard of the run being watched"),
        Binding("W,f6", "view('sweeps')", "Sweeps", show=False,
                tooltip="The newest sweep: its table and its trials"),
        Binding("question_mark,f1", "help", "Help", tooltip="Every key on one screen"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="Quit the TUI (works in text fields too)"),
        Binding("q", "quit", "Quit", tooltip="Quit the TUI; a running run keeps training"),
    ]

    def __init__(self, runs_dir: Path | str = "runs", preset: str | None = None, run: str | None = None,
                 presets_dir: Path | str | None = None, refresh: float | None = None):
        self.runs_dir = Path(runs_dir)
        self.refresh_s = refresh or DEFAULT_S  # how often the views read a run (the dashboard's key changes it)
        self._attach: Path | None = None  # the run the dashboard opens on, when it is the first view
        self._greeting: tuple[str, str, SeverityLevel] | None = None  # (message, title, severity) once mounted
        self._newest_active = ""  # the run the runs list highlights, when it is the first view
        self.DEFAULT_MODE = self._first_view(run)  # read by App.__init__: the first mode is the first view
        super().__init__()
        self.preset_ref = preset
        self.run_ref = run
        self.presets_dir = Path(presets_dir) if presets_dir else None
        self._spawned: list[subprocess.Popen] = []
        self.exit_message: str | None = None
        self.last_notice = None  # the newest notification (shown by each screen's NoticeLine)
        for name in VIEWS:
            self.add_mode(name, lambda name=name: getattr(self, name))

    # -- views, built when first shown ----------------------------------------------------------

    @cached_property
    def editor(self) -> SpecEditorScreen:
        return SpecEditorScreen(self.runs_dir, self.preset_ref, self.presets_dir)

    @cached_property
    def runs(self) -> RunsScreen:
        from .screens.runs import RunsScreen

        return RunsScreen(self.runs_dir)

    @cached_property
    def dashboard(self) -> DashboardScreen:
        from .screens.dashboard import DashboardScreen

        return DashboardScreen()

    @cached_property
    def sweeps(self) -> SweepScreen:
        from .screens.sweep import SweepScreen

        return SweepScreen(self.runs_dir)

    # -- start --------------------------------------------------------------------------------

    def _first_view(self, run_ref: str | None) -> str:
        """The view the TUI opens on: the asked-for run, the one active run, the runs list, or the editor."""
        if run_ref:
            try:
                run = resolve_run(run_ref, self.runs_dir)
            except StoreError as exc:
                self._greeting = (str(exc), "", "error")
                return "editor"
            self._attach = run.path
            run.close()
            return "dashboard"
        active = self._active_runs()
        if len(active) == 1:
            run_id, self._attach = active[0]
            self._greeting = (f"{run_id} is running: attached (r lists all runs)", "attached", "information")
            return "dashboard"
        if active:
            self._newest_active = active[-1][0]
            self._greeting = (f"{len(active)} runs are active: Enter opens the highlighted one", "runs",
                              "information")
            return "runs"
        return "editor"

    def on_mount(self) -> None:
        self.set_interval(2.0, self._collect_exited_workers)
        if self._attach is not None:
            self.watch_run(self._attach)
        elif self.current_mode == "runs":
            self.runs.show_run(self._newest_active)
        if self._greeting:
            message, title, severity = self._greeting
            self.notify(message, title=title, severity=severity, timeout=10 if severity == "error" else None)

    def _active_runs(self) -> list[tuple[str, Path]]:
        """(run id, path) of the runs still training, after marking those whose worker is gone."""
        return [(path.name, path) for path in active_runs(self.runs_dir)]

    # -- views --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "view" and parameters and parameters[0] == self.current_mode:
            return False  # no key for the view you are in
        return True

    def action_view(self, name: str) -> None:
        if name in VIEWS and name != self.current_mode:
            self.switch_mode(name)
            self.refresh_bindings()

    def watch_run(self, path: Path) -> None:
        """Open the dashboard on the run at `path`."""
        self.dashboard.attach(Path(path))
        if self.current_mode != "dashboard":
            self.switch_mode("dashboard")
        self.refresh_bindings()

    def on_run_started(self, message: RunStarted) -> None:
        self.watch_run(message.path)

    def on_run_chosen(self, message: RunChosen) -> None:
        self.watch_run(message.path)

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_groups()))

    @classmethod
    def help_groups(cls) -> list[tuple[str, list[Binding]]]:
        """Every binding of every screen, grouped by where it works (what ? shows)."""
        from .screens.help import help_groups

        return help_groups(cls.BINDINGS)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notifications show on each screen's notice line above the footer, not as toasts over the panels."""
        notice = Notification(message, title, severity, self.NOTIFICATION_TIMEOUT if timeout is None else timeout,
                              markup=markup)
        self.last_notice = notice
        self.post_message(Notify(notice))

    def withdraw_notice(self, notice: Notification | None) -> None:
        """Take a notice off the notice lines before its timeout, where it is still the newest (it no longer holds)."""
        if notice is not None and self.last_notice is notice:
            self.last_notice = None

    # -- workers started here ------------------------------------------------------------------

    def remember_worker(self, proc: subprocess.Popen) -> None:
        self._spawned.append(proc)

    def _collect_exited_workers(self) -> None:
        """Collect workers that have exited (so none lingers as a zombie while the TUI is open)."""
        self._spawned = [p for p in self._spawned if p.poll() is None]

    # -- quitting -----------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """ctrl+q (from anywhere, text fields included) quits the same way as q."""
        self.action_quit_app()

    def action_quit_app(self) -> None:
        active = self._active_runs()
        message = None
        if active:
            names = ", ".join(run_id for run_id, _ in active)
            first = active[0][0]
            message = (f"{names} {'is' if len(active) == 1 else 'are'} still training in the background.\n"
                       f"Reattach with `cockpit` (or `cockpit attach {first}`); stop with `cockpit stop {first}`.")
        self.exit_message = message
        self.exit(message=message)


__all__ = ["CockpitApp"]
