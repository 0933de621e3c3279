"""An image drawn with half blocks: each character cell is two pixels, the top one as the
foreground of `▀` and the bottom one as its background (works over any SSH in a colour terminal)."""

from __future__ import annotations

from rich.color import Color
from rich.style import Style
from rich.text import Text

from cockpit.core.thumbs import Pixel


def half_blocks(rows: list[list[Pixel]]) -> Text:
    """The pixels as len(rows) / 2 lines of `▀` (an odd last row is drawn on black)."""
    text = Text(no_wrap=True)
    for y in range(0, len(rows), 2):
        top, bottom = rows[y], rows[y + 1] if y + 1 < len(rows) else [(0, 0, 0)] * len(rows[y])
        for (r1, g1, b1), (r2, g2, b2) in zip(top, bottom):
            text.append("▀", Style(color=Color.from_rgb(r1, g1, b1), bgcolor=Color.from_rgb(r2, g2, b2)))
        if y + 2 < len(rows):
            text.append("\n")
    return text
