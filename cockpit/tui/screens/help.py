"""Every key binding on one screen, read from the screens' own BINDINGS (so it cannot go stale)."""

from __future__ import annotations

import os

from rich.console import Group
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

NOTES = [
    ("", "The run lives in its own worker process: quitting the TUI (q) or losing the SSH session leaves it "
         "training; `cockpit` again (or `cockpit attach RUN`) reattaches."),
    ("", "In a text field letters type; Esc leaves the field so that single-letter keys work again."),
]


def _key(app, binding: Binding) -> str:
    return binding.key_display or ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in binding.key.split(","))


def help_groups(app_bindings: list) -> list[tuple[str, list[Binding]]]:
    """Every screen's bindings, grouped by where they work (each screen's module is imported here, for the help)."""
    from ..widgets.section_form import SectionForm
    from .chart import ChartScreen
    from .compare import CompareScreen
    from .dashboard import DashboardScreen
    from .dialogs import ConfirmScreen
    from .editor import SpecEditorScreen
    from .hardest import HardestScreen
    from .log import LogScreen
    from .overlay import OverlayScreen
    from .runs import RunsScreen
    from .sweep import SweepScreen

    def shown(bindings) -> list[Binding]:
        return [b for b in bindings if isinstance(b, Binding)]

    return [
        ("Everywhere", shown(app_bindings)),
        ("Spec editor", shown(SpecEditorScreen.BINDINGS) + shown(SectionForm.BINDINGS)),
        ("Dashboard (live runs)", shown(DashboardScreen.BINDINGS)),
        ("Runs list", shown(RunsScreen.BINDINGS)),
        ("Sweeps", shown(SweepScreen.BINDINGS)),
        ("Chart (Enter on a panel)", shown(ChartScreen.BINDINGS)),
        ("Log (v)", shown(LogScreen.BINDINGS)),
        ("Hardest examples (h)", shown(HardestScreen.BINDINGS)),
        ("Compare (c in the runs list)", shown(CompareScreen.BINDINGS)),
        ("Overlay (o in the runs list)", shown(OverlayScreen.BINDINGS)),
        ("Dialogs", shown(ConfirmScreen.BINDINGS) + [Binding("enter", "ok", "Load / save / apply"),
                                                      Binding("escape", "cancel", "Cancel")]),
    ]


class HelpScreen(ModalScreen[None]):
    """? anywhere: all bindings, grouped by where they work."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, groups: list[tuple[str, list[Binding]]]) -> None:
        super().__init__(classes="dialog-screen")
        self.groups = groups

    def compose(self) -> ComposeResult:
        tables = []
        for title, bindings in self.groups:
            table = Table(box=None, pad_edge=False, show_header=False, expand=True, title=title,
                          title_justify="left", title_style="bold underline")
            table.add_column("key", style="bold", no_wrap=True, width=10)
            table.add_column("action", ratio=1)
            seen = set()
            for b in bindings:
                if (b.key, b.action) in seen or b.system:
                    continue
                seen.add((b.key, b.action))
                table.add_row(_key(self.app, b), b.tooltip or b.description or b.action)
            tables.append(table)
        self.table = Group(*tables)
        with Vertical(classes="dialog wide", id="help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(self.table)
                for _, note in NOTES:
                    yield Static(note, classes="dialog-detail")
            yield Static("Esc / ? / q: close    ↑ ↓ PgUp PgDn: scroll", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def plain_text(self, width: int = 160) -> str:
        """The key table as plain text (for tests and for copying)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=open(os.devnull, "w"), color_system=None)
        console.print(self.table)
        return console.export_text()

    def action_close(self) -> None:
        self.dismiss(None)
