"""A spec field with a fixed set of values: Textual's Select, opened with Enter or Space only."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Select


class FieldSelect(Select, inherit_bindings=False):
    """Select opens its menu on ↓ and ↑ as well; in the editor those keys move to the next and previous
    field, as on every other field (on the open menu they still move between its choices)."""

    BINDINGS = [Binding("enter,space", "show_overlay", "Show menu", show=False)]
