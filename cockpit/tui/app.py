"""The cockpit TUI: `cockpit` with no subcommand opens it.

Three views, one per mode, switched with e / r / d: the spec editor (edit, load, save, launch),
the runs list, and the dashboard of one run. The worker is another process; the TUI only reads
the run store and writes commands, so quitting never stops a run (stopping is its own key, confirmed).
Nothing here imports torch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.notifications import Notification, Notify, SeverityLevel

from cockpit.core.runs import reap_dead_runs, scan_runs
from engine.store import ACTIVE_STATES, StoreError, resolve_run

from .screens.dashboard import DashboardScreen
from .screens.dialogs import ConfirmScreen, LoadSpecScreen, SavePresetScreen, SetLRScreen
from .screens.editor import SpecEditorScreen
from .screens.help import HelpScreen
from .screens.runs import RunsScreen
from .screens.sweep import SweepScreen
from .messages import RunChosen, RunStarted

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
                 presets_dir: Path | str | None = None):
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.preset_ref = preset
        self.run_ref = run
        self.presets_dir = Path(presets_dir) if presets_dir else None
        self._spawned: list[subprocess.Popen] = []
        self.exit_message: str | None = None
        self.last_notice = None  # the newest notification (shown by each screen's NoticeLine)
        self.editor = SpecEditorScreen(self.runs_dir, preset, self.presets_dir)
        self.runs = RunsScreen(self.runs_dir)
        self.dashboard = DashboardScreen()
        self.sweeps = SweepScreen(self.runs_dir)

    # -- start --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        for name, screen in (("editor", self.editor), ("runs", self.runs), ("dashboard", self.dashboard),
                             ("sweeps", self.sweeps)):
            self.install_screen(screen, name)
            self.add_mode(name, name)
        self.set_interval(2.0, self._collect_exited_workers)
        if self.run_ref:
            try:
                run = resolve_run(self.run_ref, self.runs_dir)
            except StoreError as exc:
                self.switch_mode("editor")
                self.notify(str(exc), severity="error", timeout=10)
                return
            self.watch_run(run.path)
            run.close()
            return
        active = self._active_runs()
        if len(active) == 1:
            run_id, path = active[0]
            self.watch_run(path)
            self.notify(f"{run_id} is running: attached (r lists all runs)", title="attached")
        elif active:
            self.runs.show_run(active[-1][0])
            self.switch_mode("runs")
            self.notify(f"{len(active)} runs are active: Enter opens the highlighted one", title="runs")
        else:
            self.switch_mode("editor")

    def _active_runs(self) -> list[tuple[str, Path]]:
        """(run id, path) of the runs still training, after marking those whose worker is gone."""
        reap_dead_runs(self.runs_dir)
        return [(r.run_id, r.path) for r in scan_runs(self.runs_dir) if r.state in ACTIVE_STATES]

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
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_groups()))

    @classmethod
    def help_groups(cls) -> list[tuple[str, list[Binding]]]:
        def shown(bindings):
            return [b for b in bindings if isinstance(b, Binding)]

        return [
            ("Everywhere", shown(cls.BINDINGS)),
            ("Spec editor", shown(SpecEditorScreen.BINDINGS)),
            ("Dashboard (live runs)", shown(DashboardScreen.BINDINGS)),
            ("Runs list", shown(RunsScreen.BINDINGS)),
            ("Sweeps", shown(SweepScreen.BINDINGS)),
            *cls._view_groups(shown),
            ("Dialogs", shown(ConfirmScreen.BINDINGS) + [Binding("enter", "ok", "Load / save / apply"),
                                                          Binding("escape", "cancel", "Cancel")]),
        ]

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notifications show on each screen's notice line above the footer, not as toasts over the panels."""
        notice = Notification(message, title, severity, self.NOTIFICATION_TIMEOUT if timeout is None else timeout,
                              markup=markup)
        self.last_notice = notice
        self.post_message(Notify(notice))

    @staticmethod
    def _view_groups(shown) -> list[tuple[str, list[Binding]]]:
        """The full-screen views opened from the dashboard and the runs list (loaded only for the help)."""
        from .screens.chart import ChartScreen
        from .screens.compare import CompareScreen
        from .screens.hardest import HardestScreen
        from .screens.log import LogScreen

        return [("Chart (Enter on a panel)", shown(ChartScreen.BINDINGS)), ("Log (v)", shown(LogScreen.BINDINGS)),
                ("Hardest examples (h)", shown(HardestScreen.BINDINGS)),
                ("Compare (c in the runs list)", shown(CompareScreen.BINDINGS))]

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


__all__ = ["CockpitApp", "ConfirmScreen", "LoadSpecScreen", "SavePresetScreen", "SetLRScreen"]
