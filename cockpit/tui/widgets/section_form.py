"""A spec section's fields, generated from its pydantic model (nested models as sub-headings)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from .field_row import FieldRow, dom_id
from cockpit.core.form_fields import Field, Group, get_path


class SectionForm(VerticalScroll, can_focus=False):
    """Every field of one section (`optim`, `train`...): rebuilt when the optimizer changes kind."""

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
                yield Static(text, classes=f"field-group depth-{depth}")
                yield from self._emit(node.children, depth + 1)
            else:
                yield FieldRow(node, get_path(self.data, node.path))

    async def rebuild(self, data: dict[str, Any]) -> None:
        self.data = data
        await self.recompose()

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))
