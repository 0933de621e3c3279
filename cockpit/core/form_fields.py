"""The spec editor's nodes (a field, a group of fields) and how their values are read, written and shown:
plain data, no pydantic, so the editor paints its first screen before the spec's models load
(spec_form derives the nodes from those models; editor_start remembers them)."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import tomli_w


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


# ------------------------------------------------------------------------------- values

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
