"""The spec editor's first screen, remembered. What pydantic derives for the preset the editor opens on
(the spec as plain data, the form's fields, whether it validates) is cached on disk, so the next
`cockpit` paints the editor before it imports pydantic and builds the spec's models: about a fifth of
its start (bench/tui_startup.py). The editor then loads the models and checks the spec for real.

An entry is keyed by the bytes it was derived from: the preset file, the source of the spec and of the
form, the cockpit's, pydantic's and Python's versions. A change to any of them is another key, so an entry is never
stale; a damaged or unreadable entry is a miss, and a cache that cannot be written is skipped.
This module imports no pydantic; `derive` does, when it is called.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import __version__
from engine.atomic_write import write_text_atomic

from .form_fields import Field, Group
from .presets import DEFAULT_PRESET, find_preset

if TYPE_CHECKING:
    from engine.spec import RunSpec

FORMAT = 1  # of an entry; bump when EditorStart changes
_ROOT = Path(__file__).resolve().parents[2]
# what the cached description is derived by: a change to any of these files is a new key
SOURCES = (*sorted((_ROOT / "engine" / "spec").glob("*.py")), _ROOT / "engine" / "errors.py",
           *(Path(__file__).with_name(n) for n in ("spec_form.py", "form_fields.py", "editor_start.py")))


@dataclass
class EditorStart:
    """What the editor shows when it opens on a preset."""

    label: str  # the preset's name, or the default's where the asked-for one is missing or invalid
    problem: str  # why the editor fell back to the defaults ("" when it did not)
    data: dict[str, Any]  # the spec as the editor's plain data (as JSON has it)
    top_fields: list[Field]  # the spec's own scalar fields, above the tabs
    sections: list[tuple[str, str]]  # (section, tab title)
    first_nodes: list[Field | Group]  # the first section's fields (the tab shown at start)
    errors: list[tuple[str, str]]  # (dotted path, message): what validating `data` said; [] when valid


KEEP = 32  # entries kept (the newest): each preset edit or upgrade makes a new one
KINDS = {"choice", "bool", "int", "float", "str", "toml"}


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/training-cockpit/editor (~/.cache/... where it is unset or not absolute, as the
    XDG spec says); OSError where there is no home to put it in."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError) as exc:  # no $HOME and no passwd entry
            raise OSError(f"no cache directory: {exc}") from None
    return Path(base) / "training-cockpit" / "editor"


def start_key(preset: str | None) -> str:
    """The cache key of the editor's start on `preset`: a hash of every input its description depends on."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{FORMAT}\0{__version__}\0{sys.version}\0{preset or DEFAULT_PRESET}\0".encode())
    path = find_preset(preset or DEFAULT_PRESET)
    try:
        h.update(str(path.resolve()).encode() + b"\0")
    except OSError:  # a relative path in a working directory that has been deleted
        h.update(str(path).encode() + b"\0")
    for p in (path, *SOURCES, _pydantic_version_file()):
        try:
            h.update(p.read_bytes() if p is not None else b"-")
        except OSError:
            h.update(b"\0missing\0")
        h.update(b"\0")
    return h.hexdigest()


def _pydantic_version_file() -> Path | None:
    spec = importlib.util.find_spec("pydantic")  # finds the package without importing it
    return Path(spec.origin).with_name("version.py") if spec and spec.origin else None


def load_start(preset: str | None) -> EditorStart | None:
    """The cached start on `preset`, or None (not cached, unreadable, damaged)."""
    try:
        raw = json.loads((cache_dir() / f"{start_key(preset)}.json").read_text(encoding="utf-8"))
        start = EditorStart(
            label=str(raw["label"]), problem=str(raw["problem"]), data=dict(raw["data"]),
            top_fields=[_field(f) for f in raw["top_fields"]],
            sections=[(str(n), str(t)) for n, t in raw["sections"]],
            first_nodes=[_node(n) for n in raw["first_nodes"]],
            errors=[(str(w), str(m)) for w, m in raw["errors"]],
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return start if start.sections and start.first_nodes else None


def save_start(preset: str | None, start: EditorStart) -> None:
    """Cache `start` (written whole or not at all; a cache that cannot be written is skipped)."""
    try:
        path = cache_dir() / f"{start_key(preset)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(asdict(start)))
        _prune(path.parent)
    except (OSError, ValueError):  # read-only home, full disk, a value JSON cannot hold: only a cache
        pass


def _prune(folder: Path) -> None:
    """Keep the newest KEEP entries."""
    entries = []
    for p in folder.glob("*.json"):
        try:
            entries.append((p.stat().st_mtime, p))
        except OSError:  # removed by another cockpit meanwhile
            pass
    for _, p in sorted(entries, reverse=True)[KEEP:]:
        p.unlink(missing_ok=True)


def derive(preset: str | None) -> tuple[EditorStart, RunSpec]:
    """The editor's start on `preset` from the spec's models (imports pydantic), and the loaded spec."""
    from .spec_form import check, section_nodes, sections, spec_data, top_level_fields

    spec, label, problem = initial_spec(preset)
    data = json.loads(json.dumps(spec_data(spec)))  # as the cache holds it, so both starts edit the same data
    names = [(name, title) for name, title, _ in sections()]
    _, errors = check(data)
    start = EditorStart(label, problem, data, top_level_fields(), names, section_nodes(names[0][0], data), errors)
    return start, spec


def initial_spec(preset: str | None) -> tuple[RunSpec, str, str]:
    """(spec, label, problem): the preset's spec, or the defaults and why (missing or invalid preset)."""
    from engine.spec import RunSpec, SpecError, load_spec

    ref = preset or DEFAULT_PRESET
    path = find_preset(ref)
    if not path.is_file():
        return RunSpec(), DEFAULT_PRESET, "" if ref == DEFAULT_PRESET else f"no preset {ref!r}; using the defaults"
    try:
        return load_spec(path), path.stem, ""
    except SpecError as exc:
        where, msg = exc.errors[0]
        return RunSpec(), DEFAULT_PRESET, f"{path} is not a valid spec ({where}: {msg}); using the defaults"


def _field(raw: dict[str, Any]) -> Field:
    f = Field(str(raw["path"]), str(raw["name"]), str(raw["kind"]), str(raw["description"]), raw["default"],
              tuple(raw["choices"]), bool(raw["tag"]))
    if f.kind not in KINDS or (f.kind == "choice" and not f.choices):
        raise ValueError(f"not an editor field: {raw}")  # a damaged entry that still parses
    return f


def _node(raw: dict[str, Any]) -> Field | Group:
    if "children" in raw:
        return Group(str(raw["path"]), str(raw["name"]), str(raw["description"]),
                     [_node(c) for c in raw["children"]])
    return _field(raw)
