"""The footer: every binding of the screen, wrapped onto a second row when the terminal is narrow."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

CELL = 13  # columns per key: "c Checkpoint" and a gap


def columns(width: int) -> int:
    return max(1, max(width, 1) // CELL)


class KeyFooter(Footer):
    """Textual's Footer laid out as a grid of equal cells, so no binding falls off an 80-column
    terminal (Footer itself is one row that crops). Keys a focused text field takes are left out
    by Footer, as they would type instead."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._signature: tuple = ()

    def bindings_changed(self, screen: Screen) -> None:
        """Recompose only when the keys shown change (focus moving between fields changes nothing)."""
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        signature = _signature(screen)
        if signature != self._signature:
            self._signature = signature
            self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        # the screen's keys are known when it composes: they are in its first frame, where Footer alone
        # waits for the first bindings signal and recomposes (a second layout of the whole screen at start)
        self._bindings_ready = True
        self._signature = _signature(self.screen)
        yield from super().compose()
        self.styles.grid_size_columns = columns(self.size.width or self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        cols = columns(event.size.width)
        if cols != self.styles.grid_size_columns:
            self.styles.grid_size_columns = cols


def _signature(screen: Screen) -> tuple:
    """The keys the footer shows for `screen` now (a change calls for a recompose)."""
    return tuple((key, b.action, b.description, enabled)
                 for key, (_, b, enabled, _) in screen.active_bindings.items() if b.show)
