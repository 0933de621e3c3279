"""The hardest test examples of the latest evaluation: each as a half-block thumbnail (stored by
the worker, so the TUI needs neither the data set nor torch) with its label, prediction and loss."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from cockpit.core.thumbs import decode
from engine.contracts import HardestResult
from engine.store import Run

from ..widgets.thumbnail import half_blocks
from .base import PushedView


def latest_hardest(path: Path) -> tuple[HardestResult | None, int]:
    """The last stored hardest-examples result and its step (None before the first evaluation)."""
    run = Run(path, readonly=True)
    try:
        rows = run.results("hardest")
        return (rows[-1].data, rows[-1].step) if rows else (None, 0)
    finally:
        run.close()


def card(n: int, example, classes: list[str]) -> Text:
    """One example: its thumbnail (or a note), then label, prediction and loss in words (NO_COLOR)."""
    def name(i: int) -> str:
        return classes[i] if 0 <= i < len(classes) else str(i)

    pixels = decode(example.thumb)
    text = half_blocks(pixels) if pixels else Text("(no thumbnail)\n", style="dim")
    text.append(f"\n#{n + 1} test[{example.index}]\n", style="bold")
    text.append(f"label {name(example.label)}\npred  {name(example.pred)}\nloss  {example.loss:.3f}")
    return text


class HardestScreen(PushedView):
    """A grid of the hardest examples, hardest first."""

    BINDINGS = [
        Binding("escape,q,h", "close", "Back", tooltip="Back to the dashboard"),
        Binding("f5", "reload", "Reload", tooltip="Read the latest evaluation's examples again"),
    ]

    def __init__(self, run_path: Path) -> None:
        super().__init__(classes="hardest-screen")
        self.path = Path(run_path)
        self.result: HardestResult | None = None

    def body(self) -> ComposeResult:
        yield Static("reading the hardest examples…", id="hardest-head")
        with VerticalScroll(id="hardest-body"):
            yield Grid(id="hardest-grid")

    def on_mount(self) -> None:
        self.sub_title = f"hardest examples · {self.path.name}"
        self.query_one("#hardest-body").focus()
        self.action_reload()

    def action_reload(self) -> None:
        def load() -> None:
            try:
                found = latest_hardest(self.path)
            except Exception as exc:
                self.app.call_from_thread(self.notify, f"cannot read the run: {exc}", severity="error")
                return
            self.app.call_from_thread(self._show, *found)

        self.run_worker(load, thread=True, group="hardest", exit_on_error=False)

    def _show(self, result: HardestResult | None, step: int) -> None:
        self.result = result
        head = self.query_one("#hardest-head", Static)
        grid = self.query_one("#hardest-grid", Grid)
        grid.remove_children()
        if result is None or not result.examples:
            head.update("no hardest examples yet: they are recorded at each evaluation")
            return
        shown = [e for e in result.examples if e.thumb] or result.examples
        head.update(f"the {len(shown)} hardest test examples at step {step:,} (highest loss first)"
                    + ("" if all(e.thumb for e in result.examples) else f"; {len(result.examples)} recorded"))
        grid.mount_all(Static(card(n, e, result.classes), classes="hardest-card") for n, e in enumerate(shown))
