"""A spec section's fields, generated from its pydantic model (nested models as sub-headings)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from .field_row import FieldRow, dom_id
from cockpit.core.form_fields import Field, Group, get_path


class SectionForm(VerticalScroll, can_focus=False, inherit_bindings=False):
    """Every field of one section (`optim`, `train`...): rebuilt when the optimizer changes kind.

    The keys a scroll container binds (↑ ↓ PgUp PgDn) would scroll the form under the focused field and
    leave it off screen, where the next keys silently edit it. Here ↑ ↓ reach the editor (next / previous
    field), PgUp PgDn move the focus a page, and a scroll by the mouse takes the focus to a field on
    screen: the focused field is always one the user can see."""

    BINDINGS = [
        Binding("pagedown", "page(1)", "A page of fields down", show=False, key_display="PgDn"),
        Binding("pageup", "page(-1)", "A page of fields up", show=False, key_display="PgUp"),
    ]

    def __init__(self, section: str, data: dict[str, Any], populated: bool = True,
                 nodes: list[Field | Group] | None = None) -> None:
        super().__init__(id=f"form-{dom_id(section)}", classes="section-form")
        self.section = section
        self.data = data
        self.populated = populated  # sections not shown yet are built when first opened (fast start)
        self._fields = nodes  # the fields, where the caller has them (the editor's cached start); else derived

    def compose(self) -> ComposeResult:
        if self.populated:
            nodes, self._fields = self._fields, None  # a rebuild derives them from the models again
            if nodes is None:
                from cockpit.core.spec_form import section_nodes  # pydantic

                nodes = section_nodes(self.section, self.data)
            yield from self._emit(nodes, depth=0)

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._scrolled, init=False)

    async def populate(self) -> bool:
        """Build the fields if they are not built yet; True if it did."""
        if self.populated:
            return False
        self.populated = True
        await self.recompose()
        return True

    def _emit(self, nodes: list[Field | Group], depth: int) -> ComposeResult:
        for node in nodes:
            if isinstance(node, Group):
                title = node.path.split(".", 1)[-1]
                text = f"{title}: {node.description}" if node.description else title
                yield Static(Text(text), classes=f"field-group depth-{depth}")  # a description is no markup
                yield from self._emit(node.children, depth + 1)
            else:
                yield FieldRow(node, get_path(self.data, node.path))

    async def rebuild(self, data: dict[str, Any]) -> None:
        self.data = data
        await self.recompose()

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))

    # -- the focused field stays on screen ------------------------------------------------------

    def focused_row(self) -> FieldRow | None:
        node = self.screen.focused
        while node is not None and node is not self:
            if isinstance(node, FieldRow):
                return node
            node = node.parent
        return None

    def _scrolled(self) -> None:
        self.call_after_refresh(self._follow_scroll)

    def _follow_scroll(self) -> None:
        """After a scroll that took the focused field off screen (the mouse wheel, a drag of the
        scrollbar), focus the nearest field on screen, as a pager's cursor follows its window."""
        row = self.focused_row()
        if row is None or not self.is_mounted or self.can_view_entire(row.control):
            return
        shown = [r for r in self.rows() if self.can_view_entire(r.control)]
        if shown:
            above = row.virtual_region.y < self.scroll_offset.y
            shown[0 if above else -1].control.focus(scroll_visible=False)

    def action_page(self, step: int) -> None:
        """Focus the field a page below (above) the focused one and scroll it into view."""
        rows = self.rows()
        row = self.focused_row()
        if not rows:
            return
        if row is None:
            target = rows[0 if step > 0 else -1]
        else:
            goal = row.virtual_region.y + step * max(1, self.scrollable_content_region.height - 1)
            after = [r for r in rows if (r.virtual_region.y - goal) * step >= 0]
            target = after[0] if after and step > 0 else after[-1] if after else rows[-1 if step > 0 else 0]
        show_focused(target.control)


def show_focused(control: Widget) -> None:
    """Focus a field's control and scroll its containers by the least that shows it, at once (Textual's own
    focus scroll centres it with an animation, during which the next key edits a field half off screen)."""
    control.screen.set_focus(control, scroll_visible=False)
    scroll_into_view(control)


def scroll_into_view(widget: Widget) -> None:
    """Scroll a field's whole row into view (its message under it too), or the widget where it is no field."""
    row = next((n for n in widget.ancestors_with_self if isinstance(n, FieldRow)), widget)
    row.scroll_visible(animate=False)
