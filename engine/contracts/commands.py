"""Commands a client writes for a run's worker: one pydantic model per kind, joined in the discriminated
union `Command`, validated when written and again when the worker reads it."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from ..errors import UsageError


class CommandError(UsageError, ValueError):
    """A command that does not validate (unknown kind, bad argument)."""


# ------------------------------------------------------------------------------------- commands


class _Command(BaseModel):
    # defer_build: these models' validators are built on first use, not at import (a view that imports
    # this module for the metric catalogue, such as the dashboard, builds none until a key sends a command)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _finite_positive(v: float | None) -> float | None:
    if v is not None and not (math.isfinite(v) and v > 0):
        raise ValueError(f"must be a finite number > 0, got {v}")
    return v


class Stop(_Command):
    """End the run cleanly at the next step boundary (last.pt is written)."""
    kind: Literal["stop"] = "stop"
    reason: str = "stop requested"


class Pause(_Command):
    """Hold training at the next step boundary; the worker keeps the model in memory."""
    kind: Literal["pause"] = "pause"


class Continue(_Command):
    """Un-pause a paused run (not `resume`, which restarts a run from its checkpoint)."""
    kind: Literal["continue"] = "continue"


class Checkpoint(_Command):
    """Write last.pt now."""
    kind: Literal["checkpoint"] = "checkpoint"


class SetLR(_Command):
    """Change the base LR (`lr`), or one param group's multiplier (`layer` + `mult`), live."""
    kind: Literal["set_lr"] = "set_lr"
    lr: float | None = None
    layer: str | None = None
    mult: float | None = None

    _positive = field_validator("lr", "mult")(_finite_positive)


class StartSWA(_Command):
    """Start weight averaging now; the averaged model is evaluated and saved when training ends."""
    kind: Literal["swa"] = "swa"


class Calibrate(_Command):
    """Fit a temperature on the validation split and report the test set before and after."""
    kind: Literal["calibrate"] = "calibrate"
    checkpoint: str | None = None
    bins: int | None = Field(None, ge=1, le=1000)
    method: Literal["log_t", "guide"] | None = None  # None: the spec's evaluate.calibrate_method


class TTA(_Command):
    """Test-time augmentation: accuracy with and without the views."""
    kind: Literal["tta"] = "tta"
    checkpoint: str | None = None
    views: list[str] | None = None
    translate: int | None = Field(None, ge=0, le=16)
    random_views: int | None = Field(None, ge=0, le=256)
    combine: Literal["logits", "probs"] | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    draws: int | None = Field(None, ge=1, le=100)  # draws of the random views, seeds seed .. seed + draws - 1

    @field_validator("views", mode="before")
    @classmethod
    def _split_views(cls, v: Any) -> Any:
        """`views` may come as one comma-separated string, as typed on a command line."""
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v


class Confusion(_Command):
    """The confusion matrix of a checkpoint on the test set."""
    kind: Literal["confusion"] = "confusion"
    checkpoint: str | None = None


PassCommand = Union[Calibrate, TTA, Confusion]  # finishing passes: a worker computes them between two steps
Command = Annotated[Union[Stop, Pause, Continue, Checkpoint, SetLR, StartSWA, PassCommand], Field(discriminator="kind")]
_COMMAND = TypeAdapter(Command, config=ConfigDict(defer_build=True))


def _kinds(union: Any) -> tuple[str, ...]:
    return tuple(model.model_fields["kind"].default for model in get_args(union))


COMMAND_KINDS = _kinds(get_args(Command)[0])
PASS_COMMANDS = _kinds(PassCommand)


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"][1:]) or "kind"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"


def parse_command(kind: str, args: dict[str, Any] | None = None) -> Command:
    """The typed command for a kind and its arguments; CommandError says what is wrong."""
    if kind not in COMMAND_KINDS:
        raise CommandError(f"unknown command {kind!r}; known: {', '.join(COMMAND_KINDS)}")
    try:
        return _COMMAND.validate_python({**(args or {}), "kind": kind})
    except ValidationError as exc:
        raise CommandError(f"{kind}: {_first_problem(exc)}") from None


def command_args(command: Command) -> dict[str, Any]:
    """The arguments as stored in the commands table (kind apart, unset ones left out)."""
    return command.model_dump(exclude={"kind"}, exclude_none=True)
