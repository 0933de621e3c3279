"""The spec as TOML: parsing presets and `--set` overrides, errors by dotted path or file:line:col, dumping."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from ..contracts import UsageError
from .run import RunSpec
from .sections import OPTIMIZERS, AdamSpec, AdamWSpec, RMSpropSpec, SGDSpec


class SpecError(UsageError, ValueError):
    """A spec that cannot be used; `errors` lists (where, message), where = dotted path or file:line:col."""

    def __init__(self, errors: list[tuple[str, str]], source: str = ""):
        self.errors = errors
        self.source = source
        head = f"invalid spec in {source}" if source else "invalid spec"
        lines = [f"  {where}: {msg}" for where, msg in errors]
        super().__init__("\n".join([head + ":", *lines]))


MAX_LISTED_ERRORS = 30
_TAGGED_UNIONS = {("optim",)}  # pydantic puts the union tag in error locations; users never write it


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    for prefix in _TAGGED_UNIONS:
        n = len(prefix)
        if tuple(parts[:n]) == prefix and len(parts) > n and parts[n] in OPTIMIZERS:
            del parts[n]
    return ".".join(str(p) for p in parts) or "(top level)"


def _cut(text: str, limit: int = 60) -> str:
    """Text a user typed, cut short: error messages stay one readable line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    try:
        return _cut(repr(value))
    except ValueError:  # an int too long for str()
        return f"<a {type(value).__name__} too long to show>"


def _message(err: dict[str, Any]) -> str:
    msg, kind = err["msg"], err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "union_tag_invalid":
        msg = f"unknown optimizer {_shown(err['input'])}; valid: {', '.join(OPTIMIZERS)}"
    elif kind == "literal_error":
        msg = f"{msg}, got {_shown(err['input'])}"
    elif kind == "finite_number" or (kind == "float_type" and isinstance(err["input"], int)):
        msg = f"must be a finite number, got {_shown(err['input'])}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _problems(err: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, message) of one pydantic error; the cross-field checks give one line per path."""
    dotted, msg = _dotted(err["loc"]), _message(err)
    if err["loc"] or err["type"] != "value_error":
        return [(dotted, msg)]
    out = []
    for line in msg.splitlines():
        where, sep, rest = line.partition(": ")
        out.append((where, rest) if sep and _is_spec_path(where) else (dotted, line))
    return out


def _is_spec_path(dotted: str) -> bool:
    return dotted in KNOWN_KEYS or dotted.startswith("optim.layer_lr.")


def _locate(text: str, dotted: str) -> str | None:
    """Best-effort line:col of a dotted key in TOML text (for errors that point into the file)."""
    parts = dotted.split(".")
    table, key = parts[:-1], parts[-1]
    current: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([A-Za-z0-9_.\- ]+?)\s*\]", stripped)
        if header:
            current = [p.strip() for p in header.group(1).split(".")]
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*=", stripped)
        if m:
            full = current + [p.strip() for p in m.group(1).split(".")]
            if full[: len(parts)] == parts or (full == table and key.isdigit()) or full == table + [key]:
                return f"{lineno}:{line.index(m.group(1)[0]) + 1}"
    return None


def validate(data: dict[str, Any], source: str = "", text: str = "") -> RunSpec:
    """Validate a raw mapping into a RunSpec, raising SpecError with every problem."""
    try:
        return RunSpec.model_validate(data)
    except ValidationError as exc:
        problems = [p for err in exc.errors() for p in _problems(err)]
        errors = []
        for dotted, msg in problems[:MAX_LISTED_ERRORS]:  # each one is looked up in the text: keep it linear
            pos = _locate(text, dotted) if text and source else None
            errors.append((f"{_cut(dotted, 120)} ({source}:{pos})" if pos else _cut(dotted, 120), msg))
        if len(problems) > MAX_LISTED_ERRORS:
            errors.append((source or "spec", f"and {len(problems) - MAX_LISTED_ERRORS:,} more problems"))
        raise SpecError(errors, source) from None


MAX_SPEC_CHARS = 1_000_000  # a preset is a few hundred bytes; this is far past any real one
MAX_KEY_CHARS = 200
MAX_VALUE_CHARS = 10_000  # room for a data.root path of 4096 characters, quoted and escaped


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError([(source, f"{len(text):,} characters is too long for a spec (at most {MAX_SPEC_CHARS:,})")], source)
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise SpecError([(source, "invalid TOML: arrays or tables nested too deeply")], source) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer longer than Python converts
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{source}:{m.group(1)}:{m.group(2)}" if m else source
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "invalid TOML"
        raise SpecError([(where, f"invalid TOML: {msg}")], source) from None


def parse_spec_text(text: str, source: str = "<string>", overrides: list[str] | None = None) -> RunSpec:
    data = parse_toml(text, source)
    apply_overrides(data, overrides or [])
    return validate(data, source, text)


def load_spec(path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> RunSpec:
    """Load a preset (None: the defaults) and apply `key=value` overrides."""
    if path is None:
        data: dict[str, Any] = {}
        apply_overrides(data, overrides or [])
        return validate(data, "--set")
    p = Path(path)
    try:
        if not p.is_file():
            raise SpecError([(str(p), "no such preset file" if not p.exists() else "not a file")], str(p))
    except OSError as exc:  # a name too long for the filesystem, say
        raise SpecError([(str(p), f"cannot read: {exc.strerror or exc}")], str(p)) from None
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([(str(p), f"cannot read: {exc}")], str(p)) from None
    return parse_spec_text(text, str(p), overrides)


def _known_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        path = f"{prefix}{name}"
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out += _known_paths(sub, path + ".")
        elif name == "optim":
            for cls in (SGDSpec, AdamWSpec, AdamSpec, RMSpropSpec):
                out += _known_paths(cls, path + ".")
        else:
            out.append(path)
    return sorted(set(out))


KNOWN_KEYS = _known_paths(RunSpec)


def _override_problem(key: str, raw: str) -> str | None:
    if len(key) > MAX_KEY_CHARS:
        return f"key of {len(key):,} characters is too long (at most {MAX_KEY_CHARS})"
    if len(raw) > MAX_VALUE_CHARS:
        return f"value of {len(raw):,} characters is too long (at most {MAX_VALUE_CHARS:,})"
    is_layer_lr = key.startswith("optim.layer_lr.") and len(key.split(".")) == 3
    if key not in KNOWN_KEYS and not is_layer_lr:
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else "; `cockpit spec schema` lists the keys"
        return f"unknown key{hint}"
    return None


def _override_value(raw: str) -> Any:
    """The value as TOML (bare words as strings); RecursionError for arrays nested too deeply."""
    try:
        return tomllib.loads(f"v = {raw.strip()}")["v"]
    except ValueError:  # TOMLDecodeError, or an integer longer than Python converts
        return raw.strip()  # a bare word such as adamw or cifar10


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides in place; the value is parsed as TOML (bare words as strings)."""
    errors = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append((f"--set {_cut(item)}", "expected KEY=VALUE, e.g. optim.lr=0.1"))
            continue
        problem = _override_problem(key, raw)
        if problem:
            errors.append((_cut(key), problem))
            continue
        try:
            value = _override_value(raw)
        except RecursionError:
            errors.append((key, "value has arrays or tables nested too deeply"))
            continue
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                errors.append((key, f"{part} is not a table"))
                break
            node = nxt
        else:
            node[parts[-1]] = value
    if errors:
        raise SpecError(errors, "--set")
    return data


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="json")
    data["optim"] = {"name": data["optim"].pop("name"), **data["optim"]}  # the tag reads best first
    return data


def dump_spec(spec: RunSpec, header: str = "") -> str:
    """TOML text that loads back to an equal spec."""
    text = tomli_w.dumps(spec_to_dict(spec))
    if header:
        text = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + "\n" + text
    return text


def spec_schema() -> dict[str, Any]:
    return RunSpec.model_json_schema()


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as {dotted key: leaf value}."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def diff_specs(a: RunSpec, b: RunSpec) -> list[tuple[str, Any, Any]]:
    """(dotted key, value in a, value in b) for every leaf that differs."""
    fa, fb = flatten(spec_to_dict(a)), flatten(spec_to_dict(b))
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
