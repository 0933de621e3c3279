"""Markdown built safely from text a run carries (error and event messages, data paths, class and layer
names, spec values): every such text is escaped, as the HTML and SVG reports escape theirs, so a `<script>`
in a data path or a `[link](...)` in a set-lr layer name shows as the characters it is, never as live
HTML or Markdown.

Text is escaped by `esc` unless it is `Md`, Markdown this module built from escaped parts (`bold`,
`code`, `italic`) or a literal the report writes itself. HTML's specials become entities (`<` is `&lt;`,
which Markdown renders as `<`), Markdown's inline punctuation gets a backslash, and a line break becomes a
space (a newline in a cell or a quote would end it). Code spans and blocks are literal in Markdown, so
their text is not escaped; their fence is longer than any run of backticks inside, so it cannot close early.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

__all__ = ["Md", "bold", "code", "code_block", "esc", "italic", "md_table"]

# CommonMark's backslash escapes: the punctuation that starts emphasis, code, links, images, tables, strikethrough
_INLINE = re.compile(r"([\\`*_\[\]|~])")
_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")


class Md(str):
    """Markdown already: left as it is by `esc` and by table cells."""


def esc(v: Any) -> Md:
    """Plain text (any value, through str) as Markdown that shows exactly these characters."""
    if isinstance(v, Md):
        return v
    text = _INLINE.sub(r"\\\1", str(v))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Md(_BREAKS.sub(" ", text))


def bold(v: Any) -> Md:
    return Md(f"**{esc(v)}**")


def italic(v: Any) -> Md:
    return Md(f"_{esc(v)}_")


def _longest_backticks(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def code(v: Any) -> Md:
    """An inline code span of the text, whatever backticks it holds (one line; `|` escaped for tables)."""
    text = _BREAKS.sub(" ", str(v))
    fence = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")) else ""
    # GFM splits table rows on | before it reads code spans: \| is a literal | inside one
    return Md(f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}")


def code_block(text: str, lang: str = "") -> list[str]:
    """A fenced block of the text as lines, its fence longer than any backtick run inside."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return [f"{fence}{lang}", text, fence]


def _cell(v: Any) -> str:
    return esc(v) if not isinstance(v, Md) else Md(_BREAKS.sub(" ", v))


def md_table(headers: Iterable[Any], rows: Iterable[Iterable[Any]], right: Iterable[int] = ()) -> str:
    """A GFM table; every header and cell is escaped unless it is Md."""
    headers = list(headers)
    right = set(right)
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "| " + " | ".join("---:" if i in right else "---" for i in range(len(headers))) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
