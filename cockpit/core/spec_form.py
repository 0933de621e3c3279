"""The spec editor's model of the run spec, read from the pydantic classes (no per-field UI code).

A new field in `engine.spec` appears in the editor by itself: its annotation picks the widget
(Literal -> Select, bool -> Switch, int/float/str -> Input, anything else -> Input holding a TOML
value such as `[0.8, 1.0]` or `{stem = 0.1}`), its `description` is the help text, and nested
models become sub-headings. A discriminated union (the optimizer) is edited through its tag.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

import tomli_w
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.spec import RunSpec, SpecError, spec_to_dict, validate

__all__ = [
    "Field",
    "Group",
    "SECTION_TITLES",
    "sections",
    "top_level_fields",
    "walk",
    "union_members",
    "model_for",
    "get_path",
    "set_path",
    "parse_text",
    "format_value",
    "check",
    "switch_union",
    "spec_data",
]

# Tab titles for the spec's sections; a section not listed here gets its name, capitalised.
SECTION_TITLES = {
    "data": "Data",
    "augment": "Augment",
    "model": "Model",
    "optim": "Optimizer",
    "schedule": "Schedule",
    "train": "Training",
    "swa": "SWA",
    "evaluate": "Evaluate",
    "monitor": "Monitor",
}


@dataclass
class Field:
    """One editable leaf of the spec."""

    path: str  # dotted: "optim.lr", "augment.resized_crop.scale"
    name: str
    kind: str  # choice | bool | int | float | str | toml
    description: str = ""
    default: Any = None
    choices: tuple[Any, ...] = ()
    tag: bool = False  # the discriminator of a union: changing it swaps the section's fields


@dataclass
class Group:
    """A nested model: a heading and its fields."""

    path: str
    name: str
    description: str = ""
    children: list[Field | Group] = field(default_factory=list)


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _is_union(ann: Any) -> bool:
    return get_origin(ann) is Union and all(_is_model(a) for a in get_args(ann))


def union_members(info: FieldInfo) -> dict[Any, type[BaseModel]]:
    """{tag value: model class} for a discriminated-union field."""
    disc = info.discriminator if isinstance(info.discriminator, str) else "name"
    out: dict[Any, type[BaseModel]] = {}
    for cls in get_args(info.annotation):
        tag_ann = cls.model_fields[disc].annotation
        for value in get_args(tag_ann) if get_origin(tag_ann) is Literal else (cls.model_fields[disc].default,):
            out.setdefault(value, cls)
    return out


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return list(value)
    return value


def _leaf(path: str, name: str, info: FieldInfo, tag: bool = False) -> Field:
    ann = info.annotation
    desc = info.description or ""
    default = _default(info)
    if get_origin(ann) is Literal:
        return Field(path, name, "choice", desc, default, tuple(get_args(ann)), tag)
    if ann is bool:
        return Field(path, name, "bool", desc, default)
    if ann is int:
        return Field(path, name, "int", desc, default)
    if ann is float:
        return Field(path, name, "float", desc, default)
    if ann is str:
        return Field(path, name, "str", desc, default)
    return Field(path, name, "toml", desc, default)


def model_for(info: FieldInfo, value: Any) -> type[BaseModel]:
    """The model class a field holds now (the union member picked by the tag in `value`)."""
    ann = info.annotation
    if _is_union(ann):
        members = union_members(info)
        disc = info.discriminator if isinstance(info.discriminator, str) else "name"
        tag = value.get(disc) if isinstance(value, dict) else None
        return members.get(tag, next(iter(members.values())))
    return ann


def walk(model: type[BaseModel], prefix: str, data: dict[str, Any], union: FieldInfo | None = None) -> list[Field | Group]:
    """The fields of `model` (the member in force, for a union) as editor nodes, in declaration order."""
    nodes: list[Field | Group] = []
    disc = None
    if union is not None:
        disc = union.discriminator if isinstance(union.discriminator, str) else "name"
        members = union_members(union)
        tag_info = model.model_fields[disc]
        nodes.append(Field(f"{prefix}{disc}", disc, "choice", tag_info.description or "", _default(tag_info),
                           tuple(members), tag=True))
    for name, info in model.model_fields.items():
        if name == disc:
            continue
        path = f"{prefix}{name}"
        ann = info.annotation
        sub = data.get(name) if isinstance(data, dict) else None
        if _is_model(ann):
            nodes.append(Group(path, name, info.description or "", walk(ann, path + ".", sub or {})))
        elif _is_union(ann):
            cls = model_for(info, sub or {})
            nodes.append(Group(path, name, info.description or "", walk(cls, path + ".", sub or {}, union=info)))
        else:
            nodes.append(_leaf(path, name, info))
    return nodes


def sections() -> list[tuple[str, str, FieldInfo]]:
    """(name, tab title, field info) for each top-level section of the spec."""
    out = []
    for name, info in RunSpec.model_fields.items():
        if _is_model(info.annotation) or _is_union(info.annotation):
            out.append((name, SECTION_TITLES.get(name, name.replace("_", " ").capitalize()), info))
    return out


def top_level_fields() -> list[Field]:
    """The spec's own scalar fields (such as `name`), shown above the sections."""
    return [_leaf(name, name, info) for name, info in RunSpec.model_fields.items()
            if not (_is_model(info.annotation) or _is_union(info.annotation))]


def section_nodes(name: str, data: dict[str, Any]) -> list[Field | Group]:
    info = RunSpec.model_fields[name]
    sub = data.get(name) or {}
    if _is_union(info.annotation):
        return walk(model_for(info, sub), name + ".", sub, union=info)
    return walk(info.annotation, name + ".", sub)


# ------------------------------------------------------------------------------- values

_MISSING = object()


def get_path(data: dict[str, Any], path: str, default: Any = None) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def parse_text(kind: str, text: str) -> Any:
    """An Input's text as the value to validate (left as text when it does not parse, so that
    pydantic explains the problem in its own words)."""
    raw = text.strip()
    if kind == "str":
        return text
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_scalar(v: Any) -> str:
    if isinstance(v, float):
        return _float(v)
    return tomli_w.dumps({"v": v}).strip()[4:]


def _float(v: float) -> str:
    if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
        return f"{v:.1f}"
    return repr(v)


def format_value(kind: str, value: Any) -> str:
    """How a value is written in an Input (TOML syntax for lists, tuples and tables)."""
    if isinstance(value, str):
        return value if kind != "toml" else _toml_scalar(value)
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _float(float(value))
    if kind in ("int", "float", "str"):
        return str(value)
    if isinstance(value, dict):
        items = [f"{k if _BARE.match(str(k)) else tomli_w.dumps({'v': str(k)}).strip()[4:]} = {format_value('toml', v)}"
                 for k, v in value.items()]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value("toml", v) for v in value) + "]"
    if value is None:
        return ""
    return _toml_scalar(value)


def spec_data(spec: RunSpec) -> dict[str, Any]:
    """A spec as the editor's nested plain data (what it edits and validates)."""
    return copy.deepcopy(spec_to_dict(spec))


def check(data: dict[str, Any]) -> tuple[RunSpec | None, list[tuple[str, str]]]:
    """(spec, []) when `data` is valid, else (None, [(dotted path, pydantic message), ...])."""
    try:
        return validate(copy.deepcopy(data)), []
    except SpecError as exc:
        return None, list(exc.errors)


def switch_union(data: dict[str, Any], section: str, tag: Any) -> dict[str, Any]:
    """The section's data for a new union member: the new member's defaults, keeping each value
    the user had changed from the old member's default where the new member has that field."""
    info = RunSpec.model_fields[section]
    old = data.get(section) or {}
    old_cls = model_for(info, old)
    new_cls = union_members(info)[tag]
    disc = info.discriminator if isinstance(info.discriminator, str) else "name"
    new = new_cls().model_dump(mode="json")
    old_defaults = old_cls().model_dump(mode="json")
    for k, v in old.items():
        if k != disc and k in new and v != old_defaults.get(k, _MISSING):
            new[k] = v
    new[disc] = tag
    return {disc: tag, **{k: v for k, v in new.items() if k != disc}}
