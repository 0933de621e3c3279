"""The spec editor's model of the run spec, read from the pydantic classes (no per-field UI code).

A new field in `engine.spec` appears in the editor by itself: its annotation picks the widget
(Literal -> Select, bool -> Switch, int/float/str -> Input, anything else -> Input holding a TOML
value such as `[0.8, 1.0]` or `{stem = 0.1}`), its `description` is the help text, and nested
models become sub-headings. A discriminated union (the optimizer) is edited through its tag.
The editor's nodes and value helpers themselves are in form_fields (no pydantic there).
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.spec import RunSpec, SpecError, spec_to_dict, validate

from .form_fields import Field, Group, format_value, get_path, parse_text, set_path

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

_MISSING = object()

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
