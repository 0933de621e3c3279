"""The worker's log (worker.log) followed as it grows: what the worker printed (data decoding,
warnings, tracebacks), never on the terminal the TUI draws on."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Log, Static

from .base import PushedView

TAIL_S = 0.5
FIRST_BYTES = 256 * 1024  # a long log opens at its last 256 KiB


class LogScreen(PushedView):
    """`tail -f worker.log` in the TUI."""

    BINDINGS = [
        Binding("escape,q,v", "close", "Back", tooltip="Back to the dashboard"),
        Binding("end,G", "end", "End", tooltip="Jump to the end and follow"),
        Binding("home,g", "home", "Top", tooltip="Jump to the start of what is loaded"),
    ]

    def __init__(self, run_path: Path) -> None:
        super().__init__(classes="log-screen")
        self.path = Path(run_path) / "worker.log"
        self.read_to = 0
        self._partial = ""

    def body(self) -> ComposeResult:
        yield Static(str(self.path), id="log-head")
        yield Log(id="log-body", highlight=False, max_lines=20000, auto_scroll=True)

    def on_mount(self) -> None:
        self.sub_title = f"log · {self.path.parent.name}"
        log = self.query_one(Log)
        log.focus()
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
            self.query_one("#log-head", Static).update(f"{self.path}: no log yet (the worker writes it when it starts)")
        if size > FIRST_BYTES:
            self.read_to = size - FIRST_BYTES
            log.write_line(f"… (the first {self.read_to:,} bytes are not shown)")
        self.tail()
        self.set_interval(TAIL_S, self.tail)

    def tail(self) -> None:
        """Append what was written since the last read (whole lines; a partial line waits)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.read_to)
                chunk = f.read(4 * 1024 * 1024)
        except OSError:
            return
        if not chunk:
            return
        self.read_to += len(chunk)
        text = self._partial + chunk.decode("utf-8", errors="replace").replace("\r", "\n")
        lines = text.split("\n")
        self._partial = lines.pop()
        if lines:
            self.query_one(Log).write_lines(lines)
            self.query_one("#log-head", Static).update(f"{self.path} · {self.read_to:,} bytes")

    def action_end(self) -> None:
        self.query_one(Log).scroll_end(animate=False)

    def action_home(self) -> None:
        self.query_one(Log).scroll_home(animate=False)
