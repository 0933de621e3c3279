"""Where a key sits in TOML text: line:col for a path of table names, array indices and keys.

Sweep files use what spec files do not: arrays of tables (`[[variant]]`) and quoted dotted keys
(`"optim.lr" = 0.1`, also inside inline tables), so this walks the text with those in mind.
"""

from __future__ import annotations

import re
from typing import Sequence

_ARRAY = re.compile(r"^\[\[\s*(.+?)\s*\]\]")
_TABLE = re.compile(r"^\[\s*(.+?)\s*\]")
_KEY = re.compile(r'^("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_\-]+(?:\s*\.\s*(?:"[^"]*"|[A-Za-z0-9_\-]+))*)\s*=')
_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)')


def split_key(key: str) -> list[str]:
    """`a."b.c".d` -> ['a', 'b.c', 'd']."""
    return [a or b or c for a, b, c in _PART.findall(key)]


def _inline(line: str, start: int, name: str) -> int | None:
    """The column (0-based) of key `name` inside an inline table or array after `start`."""
    for pat in (rf'"{re.escape(name)}"\s*=', rf"'{re.escape(name)}'\s*=", rf"(?<![\w.\"-]){re.escape(name)}\s*="):
        m = re.compile(pat).search(line, start)
        if m:
            return m.start()
    return None


def locate(text: str, path: Sequence[str | int]) -> str | None:
    """'line:col' of the deepest part of `path` found in `text` (None if not even the first part)."""
    target = [str(p) for p in path]
    counts: dict[str, int] = {}
    current: list[str] = []
    best: tuple[int, str] = (0, "")
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.lstrip()
        indent = len(line) - len(s)
        m = _ARRAY.match(s) or _TABLE.match(s)
        if m:
            name = ".".join(split_key(m.group(1)))
            if m.re is _ARRAY:
                counts[name] = counts.get(name, -1) + 1
                current = split_key(m.group(1)) + [str(counts[name])]
            else:
                current = _indexed(split_key(m.group(1)), counts)
            depth = _common(current, target)
            if depth == len(current) and depth > best[0]:
                best = (depth, f"{lineno}:{indent + 1}")
            continue
        m = _KEY.match(s)
        if not m:
            continue
        full = current + split_key(m.group(1))
        depth = _common(full, target)
        if depth < len(full) or depth <= best[0]:
            continue
        best = (depth, f"{lineno}:{indent + 1}")
        if depth < len(target):  # the next part may sit in an inline table on this line
            col = _inline(line, indent + m.end(), target[depth])
            if col is not None:
                best = (depth + 1, f"{lineno}:{col + 1}")
    return best[1] or None


def _indexed(parts: list[str], counts: dict[str, int]) -> list[str]:
    """`[variant.set]` after the third `[[variant]]` is variant.2.set."""
    out: list[str] = []
    for i, part in enumerate(parts):
        out.append(part)
        name = ".".join(parts[: i + 1])
        if name in counts and i < len(parts) - 1:
            out.append(str(counts[name]))
    return out


def _common(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
