"""The run spec: one typed, strict place for everything a run needs.

`RunSpec()` is a valid quick CPU run (synthetic data, tiny net). Presets are TOML files of the
same shape; `--set a.b=c` overrides are parsed as TOML values and validated like the file.
TOML has no null, so no field is optional: "off" is a value (0, false, or a named choice).
Whatever validates is something the worker can use: floats are finite, counts bounded, and fields
that depend on each other are checked together.

`sections` holds the section models and their bounds, `run` the whole `RunSpec` and its
cross-field checks, `toml_io` presets, overrides, errors and dumping.
"""

from .run import RunSpec
from .sections import (
    MAX_EPOCHS,
    MAX_IMAGES,
    MAX_SEED,
    MODELS,
    OPTIMIZERS,
    AdamSpec,
    AdamWSpec,
    AugmentSpec,
    ColorJitterSpec,
    DataSpec,
    ErasingSpec,
    EvaluateSpec,
    FiniteFloat,
    ModelSpec,
    MonitorSpec,
    OptimSpec,
    ResizedCropSpec,
    RMSpropSpec,
    ScheduleSpec,
    SGDSpec,
    SwaSpec,
    TrainSpec,
)
from .toml_io import (
    KNOWN_KEYS,
    SpecError,
    apply_overrides,
    diff_specs,
    dump_spec,
    flatten,
    load_spec,
    parse_spec_text,
    parse_toml,
    spec_schema,
    spec_to_dict,
    validate,
)

__all__ = [
    "RunSpec", "SpecError", "load_spec", "parse_spec_text", "parse_toml", "validate", "apply_overrides", "dump_spec",
    "spec_to_dict", "spec_schema", "flatten", "diff_specs", "KNOWN_KEYS", "OPTIMIZERS", "MODELS", "FiniteFloat",
    "MAX_EPOCHS", "MAX_IMAGES", "MAX_SEED",
    "DataSpec", "AugmentSpec", "ResizedCropSpec", "ColorJitterSpec", "ErasingSpec", "ModelSpec", "OptimSpec",
    "SGDSpec", "AdamWSpec", "AdamSpec", "RMSpropSpec", "ScheduleSpec", "TrainSpec", "SwaSpec", "EvaluateSpec",
    "MonitorSpec",
]
