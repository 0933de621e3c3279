"""The cockpit TUI: `cockpit` with no subcommand opens it."""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from engine.spec import dump_spec, load_spec

from .presets import DEFAULT_PRESET, find_preset


class CockpitApp(App):
    """Edit a run spec, launch it in a worker process, watch and steer it."""

    TITLE = "Training Cockpit"
    CSS_PATH = "cockpit.tcss"
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(self, runs_dir: Path | str = "runs", preset: str | None = None):
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self.preset_ref = preset or DEFAULT_PRESET

    def compose(self) -> ComposeResult:
        path = find_preset(self.preset_ref)
        spec = load_spec(path if path.is_file() else None)
        self.sub_title = f"preset: {path.stem if path.is_file() else DEFAULT_PRESET}"
        yield Header()
        with VerticalScroll(id="spec"):
            yield Static(Syntax(dump_spec(spec), "toml", theme="ansi_dark", background_color="default"), id="spec-text")
        yield Footer()
