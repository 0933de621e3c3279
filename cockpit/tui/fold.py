"""What is below the fold of a scrolled container: the names of the widgets a person cannot see
yet without scrolling (so the screen can say so)."""

from __future__ import annotations

from typing import Iterable

from textual.widget import Widget


def top_in(widget: Widget, body: Widget) -> int:
    """The widget's top row inside the scrolled body (its offsets summed up to the body)."""
    top, node = 0, widget
    while node is not None and node is not body:
        top += node.virtual_region.y
        node = node.parent
    return top


def below_fold(body: Widget, named: Iterable[tuple[str, Widget]]) -> list[str]:
    """The names of the shown widgets that start below the body's visible rows."""
    bottom = body.scroll_y + body.scrollable_content_region.height
    return [name for name, w in named if w.display and top_in(w, body) >= bottom]
