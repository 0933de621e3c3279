"""The spec editor's first screen: what the spec's models derive for the preset the editor opens on
(the spec as plain data, the form's fields, whether it validates).

It is derived at every start, never cached: a cached start painted before the models loaded saved
about 0.09 s, and a stale or planted entry showed wrong values until the models corrected them
(BENCHMARKS.md). This module imports no pydantic; `derive` does, when it is called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .form_fields import Field, Group
from .presets import DEFAULT_PRESET, find_preset

if TYPE_CHECKING:
    from engine.spec import RunSpec


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


def derive(preset: str | None) -> tuple[EditorStart, RunSpec]:
    """The editor's start on `preset` from the spec's models (imports pydantic), and the loaded spec."""
    from .spec_form import check, section_nodes, sections, spec_data, top_level_fields

    spec, label, problem = initial_spec(preset)
    data = json.loads(json.dumps(spec_data(spec)))  # plain JSON data, as the editor edits it
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
