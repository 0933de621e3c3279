"""What every full screen of the cockpit shares: the header on top, the notice line and the key footer at
the bottom, the screen's own body between; views opened over another go back with Esc / q."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Header

from ..widgets.key_footer import KeyFooter
from ..widgets.notice_line import NoticeLine

if TYPE_CHECKING:  # the tables load with the lists that show them, not with the editor
    from textual.widgets import DataTable


class ViewScreen(Screen):
    """Header, `body()`, notice line, key footer."""

    NOTICE_ID: str | None = None  # the notice line's id, where the screen's CSS names it

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.body()
        yield NoticeLine(id=self.NOTICE_ID)
        yield KeyFooter()

    def body(self) -> ComposeResult:
        """The widgets between the header and the notice line."""
        raise NotImplementedError


class PushedView(ViewScreen):
    """A view opened over another (a chart, the log, a comparison): its back key closes it."""

    def action_close(self) -> None:
        self.dismiss()


class TableView(ViewScreen):
    """A list whose highlighted row Enter opens (`action_open`); a mouse click on a row opens it too."""

    def action_open(self) -> None:
        raise NotImplementedError

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()
