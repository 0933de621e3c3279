"""The sweep file: a base preset and what varies (named variants, a grid, or a search space),
the seeds every configuration runs with, and how the results are read.

    name = "guide_optimizers"
    base = "sgd_cosine"            # a preset name or path
    seeds = [0, 1, 2]
    target = 0.93                  # "convergence": epochs and time to this test accuracy
    set = { "train.epochs" = 30 }  # overrides for every trial
    [[variant]]                    # ... or [grid] / [search]
    name = "sgd"
    preset = "sgd"
    guide = 0.942                  # the guide's claimed figure, shown beside the measured one

Checked as strictly as a spec file, before anything runs: every configuration's spec is resolved
and validated, and each problem is reported at the sweep file's line:col (`SweepError`, a
UsageError: the CLI exits 2). Where Optuna acts on the trials' values (a search, pruning), every
trial needs a validation split: Optuna sees validation accuracy only. Torch-free and Optuna-free.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Union

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..contracts import UsageError
from ..spec import RunSpec, SpecError, apply_overrides, parse_toml, validate
from .locate import locate

NAME = r"^[A-Za-z0-9_-]{1,40}$"
Scalar = Union[bool, int, float, str]
MAX_CONFIGS = 10_000


class SweepError(UsageError, ValueError):
    """A sweep file that cannot run; `errors` lists (where, message), where = file:line:col or a key."""

    def __init__(self, errors: list[tuple[str, str]], source: str = ""):
        self.errors = errors
        head = f"invalid sweep file {source}" if source else "invalid sweep file"
        super().__init__("\n".join([head + ":", *(f"  {w}: {m}" for w, m in errors)]))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    name: str = Field(pattern=NAME, description="The configuration's name in the table and in run ids.")
    preset: str = Field("", description="Another base preset for this variant (default: the sweep's base).")
    set: dict[str, Any] = Field(default_factory=dict, description="Spec overrides, as --set KEY=VALUE.")
    unset: list[str] = Field(default_factory=list, description="Keys of the preset to drop first (back to the "
                             "spec's default), e.g. optim.momentum when a variant switches to AdamW.")
    guide: float | None = Field(None, ge=0, le=1, description="The guide's claimed test accuracy.")


class Param(_Strict):
    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Scalar] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> Param:
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("a categorical parameter takes `choices` (a non-empty list) and no low/high")
        elif self.low is None or self.high is None or self.choices:
            raise ValueError(f"a {self.type} parameter takes `low` and `high` (and no choices)")
        elif not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        elif self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self


class Search(_Strict):
    trials: int = Field(ge=1, le=MAX_CONFIGS, description="Configurations to sample (each runs once per seed).")
    sampler: Literal["tpe", "random"] = "tpe"
    space: dict[str, Param] = Field(min_length=1)


class Ensemble(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_+.-]{1,80}$")
    members: list[str] = Field(min_length=1, description="Variant names; their runs of one seed are ensembled.")
    across_seeds: bool = Field(False, description="Ensemble one variant's runs over all the seeds instead "
                                                  "(the guide's 'different initializations').")
    guide_gain: float | None = Field(None, ge=-1, le=1, description="The guide's claimed gain over the best member.")

    @model_validator(mode="after")
    def _enough(self) -> Ensemble:
        if self.across_seeds and len(self.members) != 1:
            raise ValueError("across_seeds takes exactly one member (its runs over the seeds are the ensemble)")
        if not self.across_seeds and len(self.members) < 2:
            raise ValueError("an ensemble needs two members or more (or one with across_seeds = true)")
        return self


class SweepFile(_Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    base: str = Field("quickstart", description="The base preset (name or path).")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=100)
    set: dict[str, Any] = Field(default_factory=dict)
    target: float = Field(0.9, gt=0, le=1, description="Test accuracy that counts as converged.")
    variant: list[Variant] = Field(default_factory=list)
    grid: dict[str, list[Scalar]] = Field(default_factory=dict)
    search: Search | None = None
    ensemble: list[Ensemble] = Field(default_factory=list)
    pruner: Literal["auto", "median", "none"] = Field("auto", description="auto: median for grid and search, "
                                                      "none for variants (the guide's table runs to the end). "
                                                      "Prunes on validation accuracy: needs data.val_size > 0.")
    pruner_startup_trials: int = Field(4, ge=0, le=1000)
    pruner_warmup_epochs: int = Field(1, ge=0, le=10_000)

    @model_validator(mode="after")
    def _one_kind(self) -> SweepFile:
        kinds = [k for k, on in (("variant", self.variant), ("grid", self.grid), ("search", self.search)) if on]
        if len(kinds) != 1:
            raise ValueError("give exactly one of [[variant]], [grid] or [search]"
                             + (f" (found {', '.join(kinds)})" if kinds else ""))
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError("seeds: must be distinct and >= 0")
        names = [v.name for v in self.variant]
        if len(set(names)) != len(names):
            raise ValueError("variant: names must be distinct")
        for e in self.ensemble:
            unknown = [m for m in e.members if m not in names]
            if unknown:
                raise ValueError(f"ensemble {e.name}: members {', '.join(unknown)} are not variants")
            if e.across_seeds and len(self.seeds) < 2:
                raise ValueError(f"ensemble {e.name}: across_seeds needs two seeds or more")
        if any(not values for values in self.grid.values()):
            raise ValueError("grid: every key needs at least one value")
        return self

    @property
    def kind(self) -> str:
        return "variant" if self.variant else "grid" if self.grid else "search"

    @property
    def pruning(self) -> bool:
        return self.pruner == "median" or (self.pruner == "auto" and self.kind != "variant")

    @property
    def needs_val(self) -> bool:
        """Whether Optuna acts on the trials' values (a search's sampler, the pruner): then every
        trial needs a validation split, as choosing on test accuracy would be peeking."""
        return self.kind == "search" or self.pruning


def toml_value(value: Any) -> str:
    """A value as it is written after `--set KEY=`."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def sets(mapping: dict[str, Any]) -> list[str]:
    return [f"{k}={toml_value(v)}" for k, v in mapping.items()]


@dataclass(frozen=True)
class Config:
    """One configuration: its label, preset and overrides; `params` are its Optuna parameters."""
    label: str
    preset: str
    overrides: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    guide: float | None = None
    where: tuple[Any, ...] = ()  # its place in the sweep file, for error messages
    unset: tuple[str, ...] = ()


def grid_label(params: dict[str, Any]) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())


def configs(sweep: SweepFile) -> list[Config]:
    """The fixed configurations (variants, or every grid point); none for a search."""
    if sweep.variant:
        return [Config(v.name, v.preset or sweep.base, tuple(sets(v.set)), {"config": v.name}, v.guide,
                       ("variant", i, "set"), tuple(v.unset)) for i, v in enumerate(sweep.variant)]
    if not sweep.grid:
        return []
    points: list[dict[str, Any]] = [{}]
    for key, values in sweep.grid.items():
        points = [{**p, key: v} for p in points for v in values]
    return [Config(grid_label(p), sweep.base, tuple(sets(p)), p, None, ("grid",)) for p in points]


def search_probes(sweep: SweepFile) -> list[Config]:
    """A search space's corners (each parameter at each end, or each choice): checked like configs."""
    out = []
    assert sweep.search is not None
    for key, p in sweep.search.space.items():
        values = p.choices or [p.low, p.high]
        for v in values:
            if p.type == "int":
                v = int(v)
            out.append(Config(f"{key}={v}", sweep.base, tuple(sets({key: v})), {}, None, ("search", "space", key)))
    return out


def trial_name(sweep: str, label: str, seed: int) -> str:
    """The spec name of a trial (its run id ends with it): says the sweep, the configuration, the seed."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_") or "c"
    tail = f".s{seed}"
    return f"{sweep}.{slug}"[: 64 - len(tail)] + tail


def trial_spec(base_text: str, base_source: str, sweep: SweepFile, config: Config, seed: int,
               extra: list[str] = ()) -> RunSpec:
    """The resolved spec of one trial: base preset, the sweep's sets, the config's, the seed, its name."""
    overrides = [*sets(sweep.set), *config.overrides, f"train.seed={seed}",
                 f"name={toml_value(trial_name(sweep.name, config.label, seed))}", *extra]
    return resolve(base_text, base_source, config.unset, overrides)


def resolve(base_text: str, source: str, unset: tuple[str, ...], overrides: list[str]) -> RunSpec:
    """A preset's text, less the `unset` keys, plus overrides, validated (SpecError says what is wrong)."""
    data = parse_toml(base_text, source)
    for key in unset:
        *tables, leaf = key.split(".")
        node: Any = data
        for t in tables:
            node = node.get(t, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    apply_overrides(data, overrides)
    return validate(data, source, base_text)


# ------------------------------------------------------------------------------------- loading


def _pydantic_errors(exc: ValidationError, text: str, source: str) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        if not loc and msg.startswith(("seeds:", "variant:", "grid:", "ensemble")):
            loc = (msg.split(":")[0].split()[0],)
            msg = msg.split(": ", 1)[1] if msg.split(":")[0] == loc[0] else msg
        pos = locate(text, loc) if loc else None
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        out.append((f"{source}:{pos or '1:1'}", f"{dotted}: {msg}"))
    return out


def _place(sweep: SweepFile, config: Config, key: str) -> tuple[tuple[Any, ...], bool]:
    """Where in the sweep file a spec key of `config` comes from, and whether that is its preset."""
    if key in {o.split("=", 1)[0] for o in config.overrides}:
        return ((*config.where, key) if config.where[0] != "grid" else ("grid", key)), False
    if key in sweep.set:
        return ("set", key), False
    return (("variant", config.where[1], "preset") if config.where[:1] == ("variant",) else ("base",)), True


def _spec_errors(exc: SpecError, sweep: SweepFile, config: Config, text: str, source: str) -> list[tuple[str, str]]:
    """A configuration's spec problems, each at the key in the sweep file that caused it."""
    out = []
    for where, msg in exc.errors:
        key = where.split(" (", 1)[0]
        loc, in_preset = _place(sweep, config, key)
        if in_preset:
            msg = f"{msg} (in {where})" if key != where else msg
        out.append((f"{source}:{locate(text, loc) or '1:1'}", f"{config.label}: {key}: {msg}"))
    return out


def _no_val_error(sweep: SweepFile, config: Config, text: str, source: str) -> tuple[str, str]:
    """A trial with no validation split in a sweep where Optuna acts on the trials' values, at the
    key that set data.val_size to 0 (or the preset that has none)."""
    loc, in_preset = _place(sweep, config, "data.val_size")
    why = ("a search's sampler picks configurations by validation accuracy" if sweep.kind == "search" else
           'its pruner compares trials by validation accuracy (or set pruner = "none")')
    head = f"data.val_size: is 0 in preset {config.preset!r}" if in_preset else f"{config.label}: data.val_size: is 0"
    return (f"{source}:{locate(text, loc) or '1:1'}", f"{head} (no validation split), but {why}, never test "
            'accuracy: add one, e.g. set = { "data.val_size" = 5000 }')


def load_sweep(path: str | Path, find_preset: Callable[[str], Path] = Path) -> tuple[SweepFile, dict[str, str]]:
    """The checked sweep file and the text of each preset it uses ({preset ref: TOML text}).

    Every configuration's spec (every corner of a search space) is validated here; SweepError lists
    every problem at file:line:col."""
    p = Path(path)
    source = str(p)
    if not p.is_file():
        raise SweepError([(source, "no such sweep file" if not p.exists() else "not a file")], source)
    text = p.read_text(encoding="utf-8")
    try:
        data = parse_toml(text, source)
    except SpecError as exc:
        raise SweepError(exc.errors, source) from None
    data.setdefault("name", p.stem)
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SweepError(_pydantic_errors(exc, text, source), source) from None
    return sweep, _check_configs(sweep, text, source, find_preset)


def _check_configs(sweep: SweepFile, text: str, source: str, find_preset: Callable[[str], Path]) -> dict[str, str]:
    errors: list[tuple[str, str]] = []
    presets: dict[str, str] = {}
    cands = configs(sweep) if sweep.kind != "search" else search_probes(sweep)
    if len(cands) * len(sweep.seeds) > MAX_CONFIGS:
        raise SweepError([(f"{source}:{locate(text, (sweep.kind,)) or '1:1'}",
                           f"{len(cands) * len(sweep.seeds):,} trials is more than {MAX_CONFIGS:,}")], source)
    for c in cands:
        if c.preset not in presets:
            try:
                presets[c.preset] = _preset_text(c.preset, find_preset)
            except SpecError as exc:
                loc = ("variant", c.where[1], "preset") if c.where[:1] == ("variant",) and sweep.variant[c.where[1]].preset else ("base",)
                errors.append((f"{source}:{locate(text, loc) or '1:1'}", f"preset {c.preset!r}: {exc.errors[0][1]}"))
                presets[c.preset] = ""
                continue
        if not presets[c.preset]:
            continue
        try:
            spec = resolve(presets[c.preset], str(find_preset(c.preset)), c.unset, [*sets(sweep.set), *c.overrides])
        except SpecError as exc:
            errors += _spec_errors(exc, sweep, c, text, source)
            continue
        if sweep.needs_val and spec.data.val_size == 0:
            errors.append(_no_val_error(sweep, c, text, source))
    if errors:
        raise SweepError(list(dict.fromkeys(errors)), source)
    return presets


def _preset_text(ref: str, find_preset: Callable[[str], Path]) -> str:
    p = find_preset(ref)
    if not Path(p).is_file():
        raise SpecError([(str(p), "no such preset")], str(p))
    return Path(p).read_text(encoding="utf-8")


def sweep_json(sweep: SweepFile, presets: dict[str, str]) -> str:
    """The sweep as stored beside its study and shared through it (joiners need no files)."""
    return json.dumps({"sweep": sweep.model_dump(mode="json"), "presets": presets}, sort_keys=True)


def from_json(text: str) -> tuple[SweepFile, dict[str, str]]:
    data = json.loads(text)
    return SweepFile.model_validate(data["sweep"]), dict(data["presets"])
