"""The README's Layout section matches the tree: every module or package it names exists, and every
top-level module and package of `engine/` and `cockpit/` is named there."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import ROOT

ITEM = re.compile(r"\b[a-z_][\w.]*/(?:\{[\w,]+\}\.py)?|\b[a-z_]\w*\.py")  # lower-case names: modules, packages


def _layout_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].splitlines()[1:]


def _expand(folder: Path, item: str) -> list[Path]:
    """`render/{html,svg}.py` -> render/html.py, render/svg.py; `screens/` -> screens; `a.py` -> a.py."""
    m = re.fullmatch(r"([\w.]+)/\{([\w,]+)\}\.py", item)
    if m:
        return [folder / m[1] / f"{name}.py" for name in m[2].split(",")]
    return [folder / item.rstrip("/")]


def named_paths() -> tuple[set[Path], set[Path]]:
    """(every path the Layout names, the top-level items it lists under engine/ and cockpit/)."""
    named, top = set(), set()
    root = package = None
    for line in _layout_block():
        if re.match(r"^[a-z_]+/", line):  # a top-level folder: its own line, then the items under it
            root, package = ROOT / line.split("/", 1)[0], None
            named.add(root)
            continue
        if root is None:
            continue
        if re.match(r"^  \S", line):  # an item line: its first column lists top-level items
            column, _, rest = line[2:].partition("   ")
            items = ITEM.findall(column)
            top |= {p for item in items for p in _expand(root, item)[:1] if "{" not in item}
            named |= {p for item in items for p in _expand(root, item)}
            package = root / items[0].rstrip("/") if len(items) == 1 and items[0].endswith("/") else None
        else:
            rest = line
        for item in ITEM.findall(rest):
            named |= set(_expand(package or root, item))
    return named, top


def test_every_module_the_layout_names_exists():
    named, _ = named_paths()
    assert named, "the Layout section names no module"
    missing = sorted(str(p.relative_to(ROOT)) for p in named if not p.exists())
    assert missing == [], f"README's Layout names modules that do not exist: {missing}"


def test_every_top_level_module_and_package_is_in_the_layout():
    _, top = named_paths()
    actual = {p for pkg in ("engine", "cockpit") for p in (ROOT / pkg).iterdir()
              if (p.suffix == ".py" and p.name not in ("__init__.py", "__main__.py"))
              or (p.is_dir() and (p / "__init__.py").exists())}
    unnamed = sorted(str(p.relative_to(ROOT)) for p in actual - top)
    assert unnamed == [], f"README's Layout does not name: {unnamed}"


def test_every_source_path_the_docs_name_exists():
    """`engine/...py`, `cockpit/...py`, `bench/...py` and `tests/...py` named in README.md and docs/."""
    pattern = re.compile(r"\b(?:engine|cockpit|bench|tests)/[\w/]+\.(?:py|tcss|sh)\b")
    docs = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = sorted({f"{doc.name}: {path}" for doc in docs for path in pattern.findall(doc.read_text(encoding="utf-8"))
                      if not (ROOT / path).exists()})
    assert missing == [], f"the docs name files that do not exist: {missing}"
