"""One spec field: its name, the widget its type calls for, a changed mark, and its inline error."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from ..messages import FieldEdited
from .field_select import FieldSelect
from .ordered_input import OrderedInput
from cockpit.core.form_fields import Field, format_value, parse_text


def dom_id(path: str) -> str:
    return path.replace(".", "-")


class FieldRow(Widget):
    """`name  [widget]  on *` on one line (a 3-column grid), the pydantic message under it when the
    value is invalid. `*` marks a value that differs from the loaded spec; switches also say on/off
    in words, so nothing depends on colour alone (NO_COLOR)."""

    def __init__(self, spec_field: Field, value: Any) -> None:
        super().__init__(id=f"field-{dom_id(spec_field.path)}", classes=f"field-row -{spec_field.kind}")
        self.field = spec_field
        self.value = value
        self.control: Widget = self._make_control(value)
        self._error: str | None = None
        self._changed = False

    @property
    def path(self) -> str:
        return self.field.path

    def _make_control(self, value: Any) -> Widget:
        f = self.field
        cid = f"in-{dom_id(f.path)}"
        if f.kind == "choice":
            options = [(str(c), c) for c in f.choices]
            start = value if value in f.choices else f.choices[0]
            return FieldSelect(options, value=start, allow_blank=False, compact=True, id=cid, classes="field-control",
                          type_to_search=False)
        if f.kind == "bool":
            return Switch(bool(value), id=cid, classes="field-control")
        return OrderedInput(format_value(f.kind, value), compact=True, id=cid, classes="field-control",
                            select_on_focus=True)

    def compose(self) -> ComposeResult:
        yield Label(self.field.name, classes="field-label")
        yield self.control
        yield Static(self._mark_text(), classes="field-mark")
        yield Static("", classes="field-error")

    def _mark_text(self) -> str:
        words = _on_off(self.value) if self.field.kind == "bool" else ""
        return f"{words} *".strip() if self._changed else words

    # -- edits ------------------------------------------------------------------------------

    def _edited(self, value: Any) -> None:
        if value == self.value and type(value) is type(self.value):
            return
        self.value = value
        if self.field.kind == "bool":
            self.query_one(".field-mark", Static).update(self._mark_text(), layout=False)
        self.post_message(FieldEdited(self.field.path, value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edited(parse_text(self.field.kind, event.value))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL:
            self._edited(event.value)

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self._edited(event.value)

    # -- state shown ------------------------------------------------------------------------

    def on_descendant_focus(self) -> None:
        """The focused field's name is marked (▸) and reversed: visible without colour (NO_COLOR)."""
        self.add_class("-focused")
        self.query_one(".field-label", Label).update(f"▸ {self.field.name}")

    def on_descendant_blur(self) -> None:
        self.remove_class("-focused")
        self.query_one(".field-label", Label).update(self.field.name)

    def show_error(self, message: str | None) -> None:
        if message == self._error:
            return
        self._error = message
        # Text, not markup: a message may hold brackets ("[0, 1)") that markup would take for a tag
        self.query_one(".field-error", Static).update(Text(f"✗ {message}") if message else "")
        self.set_class(bool(message), "-invalid")

    def show_changed(self, changed: bool, loaded: Any) -> None:
        if changed == self._changed:
            return
        self._changed = changed
        self.query_one(".field-mark", Static).update(self._mark_text(), layout=False)
        self.set_class(changed, "-changed")
        self.control.tooltip = Text(self.help_text(loaded if changed else None))

    def help_text(self, loaded: Any = None) -> str:
        f = self.field
        text = f"{f.path}: {f.description}" if f.description else f.path
        if loaded is not None:
            text += f"  (loaded: {format_value(f.kind, loaded)})"
        return text


def _on_off(value: Any) -> str:
    return "on" if value is True else "off" if value is False else str(value)
