"""The run spec: one typed, strict place for everything a run needs.

`RunSpec()` is a valid quick CPU run (synthetic data, tiny net). Presets are TOML files of the
same shape; `--set a.b=c` overrides are parsed as TOML values and validated like the file.
TOML has no null, so no field is optional: "off" is a value (0, false, or a named choice).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tomli_w
from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "RunSpec",
    "SpecError",
    "load_spec",
    "parse_spec_text",
    "dump_spec",
    "apply_overrides",
    "spec_schema",
    "OPTIMIZERS",
    "MODELS",
    "FiniteFloat",
]

MODELS = ("tiny", "fastnet", "resnet18", "resnet34", "resnet50")
OPTIMIZERS = ("sgd", "adamw", "adam", "rmsprop")

FiniteFloat = Annotated[float, AllowInfNan(False)]
"""A float that is never inf or NaN: every float field of the spec is one."""

MAX_SEED = 2**63 - 1  # fits SQLite's INTEGER and torch.manual_seed, with room for seed + step
MAX_EPOCHS = 10_000
MAX_STEPS = 1_000_000  # largest cadence, in steps
MAX_IMAGES = 1_000_000  # per synthetic split, and the largest validation split
MAX_SYNTHETIC_BYTES = 8 * 2**30  # the synthetic set lives in memory as uint8
DATASET_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}  # (train, test) images


class SpecError(ValueError):
    """A spec that cannot be used; `errors` lists (where, message), where = dotted path or file:line:col."""

    def __init__(self, errors: list[tuple[str, str]], source: str = ""):
        self.errors = errors
        self.source = source
        head = f"invalid spec in {source}" if source else "invalid spec"
        lines = [f"  {where}: {msg}" for where, msg in errors]
        super().__init__("\n".join([head + ":", *lines]))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ---------------------------------------------------------------------------------------- data


class DataSpec(Section):
    source: Literal["synthetic", "cifar10", "cifar100", "folder"] = Field(
        "synthetic", description="Where images come from: a generated learnable set, CIFAR through torchvision, or an image-folder tree."
    )
    root: str = Field(
        "",
        max_length=4096,
        description="Dataset folder. Empty: $COCKPIT_DATA, else ~/.cache/cockpit/data. For 'folder', the tree with train/ and test/.",
    )
    download: bool = Field(True, description="Download CIFAR into root when it is missing.")
    val_size: int = Field(
        0, ge=0, le=MAX_IMAGES, description="Images carved from train (seeded) for validation, calibration and model selection."
    )
    synthetic_train: int = Field(2048, ge=2, le=MAX_IMAGES, description="Synthetic source: number of training images.")
    synthetic_test: int = Field(512, ge=1, le=MAX_IMAGES, description="Synthetic source: number of test images.")
    synthetic_classes: int = Field(10, ge=2, le=1000, description="Synthetic source: number of classes.")
    image_size: int = Field(32, ge=8, le=512, description="Synthetic source: image side in pixels.")

    @field_validator("root")
    @classmethod
    def _printable_path(cls, v: str) -> str:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
            raise ValueError("must not contain control characters (such as NUL or a newline)")
        return v

    def known_sizes(self) -> tuple[int, int] | None:
        """(train, test) images before the validation split, where the spec alone tells."""
        if self.source == "synthetic":
            return self.synthetic_train, self.synthetic_test
        return DATASET_SIZES.get(self.source)


# ------------------------------------------------------------------------------------- augment


def _fraction_range(v: tuple[float, float]) -> tuple[float, float]:
    if not (0 < v[0] <= v[1] <= 1):
        raise ValueError("needs 0 < min <= max <= 1")
    return v


def _ratio_range(v: tuple[float, float]) -> tuple[float, float]:
    if not (0.01 <= v[0] <= v[1] <= 100):
        raise ValueError("needs 0.01 <= min <= max <= 100")
    return v


FractionRange = Annotated[tuple[FiniteFloat, FiniteFloat], AfterValidator(_fraction_range)]
RatioRange = Annotated[tuple[FiniteFloat, FiniteFloat], AfterValidator(_ratio_range)]


class ResizedCropSpec(Section):
    enabled: bool = Field(False, description="RandomResizedCrop back to the input size.")
    scale: FractionRange = Field((0.08, 1.0), description="Range of the cropped area as a fraction of the image.")
    ratio: RatioRange = Field((3 / 4, 4 / 3), description="Range of the crop's aspect ratio.")


class ColorJitterSpec(Section):
    p: FiniteFloat = Field(0.0, ge=0, le=1, description="Probability that an image gets color jitter (RandomApply).")
    brightness: FiniteFloat = Field(0.2, ge=0, description="Brightness factor drawn from [1-b, 1+b].")
    contrast: FiniteFloat = Field(0.2, ge=0, description="Contrast factor drawn from [1-c, 1+c].")
    saturation: FiniteFloat = Field(0.2, ge=0, description="Saturation factor drawn from [1-s, 1+s].")
    hue: FiniteFloat = Field(0.1, ge=0, le=0.5, description="Hue shift drawn from [-h, h] (fraction of a turn).")


class ErasingSpec(Section):
    p: FiniteFloat = Field(0.0, ge=0, le=1, description="Probability that an image gets a random erased rectangle.")
    scale: FractionRange = Field((0.02, 0.33), description="Range of the erased area as a fraction of the image.")
    ratio: RatioRange = Field((0.3, 3.3), description="Range of the erased rectangle's aspect ratio.")


class AugmentSpec(Section):
    flip: FiniteFloat = Field(0.5, ge=0, le=1, description="Probability of a horizontal flip.")
    translate: int = Field(0, ge=0, le=16, description="Pad-and-random-crop by up to this many pixels (speed-record fast path); 0 is off.")
    cutout: int = Field(0, ge=0, le=32, description="Side of a zeroed square at a random place (speed-record cutout); 0 is off.")
    resized_crop: ResizedCropSpec = Field(default_factory=ResizedCropSpec, description="RandomResizedCrop.")
    color_jitter: ColorJitterSpec = Field(default_factory=ColorJitterSpec, description="ColorJitter under RandomApply.")
    grayscale: FiniteFloat = Field(0.0, ge=0, le=1, description="Probability of RandomGrayscale.")
    rotation: FiniteFloat = Field(0.0, ge=0, le=180, description="RandomRotation: angle drawn from [-degrees, degrees]; 0 is off.")
    erasing: ErasingSpec = Field(default_factory=ErasingSpec, description="RandomErasing, applied after Normalize.")
    normalize: bool = Field(True, description="Normalize with the dataset's per-channel mean and std.")


# --------------------------------------------------------------------------------------- model


class ModelSpec(Section):
    name: Literal["tiny", "fastnet", "resnet18", "resnet34", "resnet50"] = Field(
        "tiny", description="Architecture: tiny (CPU smoke runs), fastnet (speed records), CIFAR ResNets."
    )
    stem: Literal["conv3x3", "3conv"] = Field("conv3x3", description="ResNet stem: one 3x3 conv, or the guide's three 3x3 convs.")
    se: bool = Field(False, description="Squeeze-and-excitation block in every residual block.")
    se_reduction: int = Field(16, ge=1, le=256, description="SE bottleneck reduction ratio.")
    width: FiniteFloat = Field(1.0, gt=0, le=8, description="Channel width multiplier.")


# --------------------------------------------------------------------------------------- optim


_PARAM_PREFIX = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
UnitInterval = Annotated[FiniteFloat, Field(ge=0, lt=1)]


class _OptimBase(Section):
    lr: FiniteFloat = Field(0.05, gt=0, le=100, description="Base learning rate (peak LR for warmup and one-cycle).")
    weight_decay: FiniteFloat = Field(5e-4, ge=0, le=1, description="Weight decay.")
    no_decay_bn_bias: bool = Field(True, description="Exempt BatchNorm and bias parameters from weight decay.")
    layer_lr: dict[str, Annotated[FiniteFloat, Field(gt=0, le=1000)]] = Field(
        default_factory=dict,
        max_length=256,
        description="Per-layer LR multipliers by parameter-name prefix, e.g. {stem = 0.1, fc = 2.0}; each becomes a param group.",
    )

    @field_validator("layer_lr")
    @classmethod
    def _layer_prefixes(cls, v: dict[str, float]) -> dict[str, float]:
        for prefix in v:
            if len(prefix) > 200 or not _PARAM_PREFIX.match(prefix):
                shown = prefix if len(prefix) <= 40 else prefix[:40] + "..."
                raise ValueError(f"{shown!r} is not a parameter-name prefix (such as stem, layer1 or layer1.0.conv1)")
        return v


class SGDSpec(_OptimBase):
    name: Literal["sgd"] = Field("sgd", description="Optimizer.")
    momentum: FiniteFloat = Field(0.9, ge=0, lt=1, description="Momentum.")
    nesterov: bool = Field(False, description="Nesterov momentum.")


class AdamWSpec(_OptimBase):
    name: Literal["adamw"] = Field("adamw", description="Optimizer.")
    lr: FiniteFloat = Field(1e-3, gt=0, le=100, description="Base learning rate (peak LR for warmup and one-cycle).")
    weight_decay: FiniteFloat = Field(0.05, ge=0, le=1, description="Decoupled weight decay.")
    betas: tuple[UnitInterval, UnitInterval] = Field((0.9, 0.999), description="Adam betas, each in [0, 1).")
    eps: FiniteFloat = Field(1e-8, gt=0, le=1, description="Adam epsilon.")


class AdamSpec(AdamWSpec):
    name: Literal["adam"] = Field("adam", description="Optimizer.")  # type: ignore[assignment]
    weight_decay: FiniteFloat = Field(0.0, ge=0, le=1, description="L2 weight decay (coupled).")


class RMSpropSpec(_OptimBase):
    name: Literal["rmsprop"] = Field("rmsprop", description="Optimizer.")
    lr: FiniteFloat = Field(1e-3, gt=0, le=100, description="Base learning rate.")
    alpha: FiniteFloat = Field(0.99, gt=0, lt=1, description="Smoothing constant.")
    momentum: FiniteFloat = Field(0.0, ge=0, lt=1, description="Momentum.")


OptimSpec = Annotated[Union[SGDSpec, AdamWSpec, AdamSpec, RMSpropSpec], Field(discriminator="name")]


# ------------------------------------------------------------------------------------ schedule


class ScheduleSpec(Section):
    name: Literal["constant", "step", "cosine", "onecycle"] = Field("cosine", description="LR schedule, stepped every iteration.")
    warmup_epochs: FiniteFloat = Field(0.0, ge=0, le=MAX_EPOCHS, description="Linear warmup from 0 (constant, step, cosine).")
    min_lr: FiniteFloat = Field(0.0, ge=0, le=1, description="Cosine floor as a fraction of the base LR.")
    milestones: list[FiniteFloat] = Field(
        default_factory=lambda: [0.5, 0.75], max_length=100, description="Step schedule: fractions of training where the LR is multiplied by gamma."
    )
    gamma: FiniteFloat = Field(0.1, gt=0, le=1, description="Step schedule: factor at each milestone.")
    pct_start: FiniteFloat = Field(0.25, gt=0, lt=1, description="One-cycle: fraction of training spent rising to the peak.")
    div_factor: FiniteFloat = Field(25.0, ge=1, description="One-cycle: start LR = peak / div_factor.")
    final_div_factor: FiniteFloat = Field(1e3, ge=1, description="One-cycle: final LR = start LR / final_div_factor.")

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, v: list[float]) -> list[float]:
        if any(not 0 < m < 1 for m in v) or v != sorted(v):
            raise ValueError("milestones must be increasing fractions in (0, 1)")
        return v


# --------------------------------------------------------------------------------------- train


class TrainSpec(Section):
    epochs: int = Field(3, ge=1, le=MAX_EPOCHS, description="Training epochs.")
    batch_size: int = Field(
        128, ge=2, le=65_536, description="Training batch size (at least 2: BatchNorm needs two values per channel)."
    )
    eval_batch_size: int = Field(1024, ge=1, le=65_536, description="Evaluation batch size.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        "auto", description="Mixed precision on CUDA: auto = bf16 where supported, else fp16 with GradScaler. CPU runs fp32."
    )
    channels_last: bool = Field(True, description="channels_last memory format on CUDA.")
    compile: bool = Field(False, description="torch.compile the model.")
    grad_clip: FiniteFloat = Field(0.0, ge=0, description="Clip the global grad norm to this value; 0 is off.")
    label_smoothing: FiniteFloat = Field(0.0, ge=0, lt=1, description="Cross-entropy label smoothing.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for weights, data order, augmentation and the validation split.")
    threads: int = Field(0, ge=0, le=512, description="CPU threads for torch; 0 keeps torch's default.")
    checkpoint_every: int = Field(1, ge=1, le=MAX_EPOCHS, description="Write the 'last' checkpoint every this many epochs.")
    sync_bn: bool = Field(
        False, description="Under several processes (--nproc-per-node/--nnodes > 1): SyncBatchNorm (CUDA only)."
    )


# ----------------------------------------------------------------------------------------- swa


class SwaSpec(Section):
    enabled: bool = Field(False, description="Stochastic weight averaging over the end of training.")
    start: FiniteFloat = Field(0.75, gt=0, le=MAX_EPOCHS, description="When SWA starts: an epoch number if >= 1, else a fraction of training.")
    lr: FiniteFloat = Field(0.05, gt=0, le=100, description="SWA learning rate (SWALR target).")
    anneal_epochs: int = Field(1, ge=0, le=MAX_EPOCHS, description="Epochs to anneal from the schedule's LR to the SWA LR.")
    anneal_strategy: Literal["cos", "linear"] = Field("cos", description="SWALR annealing shape.")


# ------------------------------------------------------------------------------------ evaluate


class EvaluateSpec(Section):
    every: int = Field(1, ge=1, le=MAX_EPOCHS, description="Evaluate on the test (and validation) set every this many epochs.")
    tta: bool = Field(False, description="Run TTA evaluation at the end of training.")
    tta_views: list[Literal["identity", "flip", "translate"]] = Field(
        default_factory=lambda: ["identity", "flip"], max_length=8, description="Deterministic TTA views."
    )
    tta_translate: int = Field(2, ge=1, le=8, description="Pixels for the 'translate' views (four directions).")
    tta_random_views: int = Field(0, ge=0, le=64, description="Extra randomly augmented TTA views (seeded).")
    tta_combine: Literal["logits", "probs"] = Field("logits", description="Average TTA views' logits or probabilities.")
    calibrate: bool = Field(False, description="Fit a temperature on the validation split at the end of training.")
    ece_bins: int = Field(15, ge=2, le=100, description="Bins for the expected calibration error.")
    hardest: int = Field(16, ge=0, le=1000, description="Hardest test examples recorded at each eval.")


# ------------------------------------------------------------------------------------- monitor


class MonitorSpec(Section):
    every: int = Field(10, ge=1, le=MAX_STEPS, description="Steps between reads of the on-device step metrics (one host transfer each).")
    grad_flow_every: int = Field(10, ge=0, le=MAX_STEPS, description="Steps between per-group grad norm and update/weight ratios; 0 is off.")
    activations_every: int = Field(100, ge=0, le=MAX_STEPS, description="Steps between activation statistics (hooks attached only then); 0 is off.")
    difficulty_every: int = Field(50, ge=0, le=MAX_STEPS, description="Steps between per-sample loss quantiles; 0 is off.")
    tensorboard: bool = Field(False, description="Also write TensorBoard events to runs/<id>/tb.")
    nonfinite_limit: int = Field(5, ge=1, le=MAX_STEPS, description="Stop the run after this many non-finite steps in a row.")
    spike_factor: FiniteFloat = Field(10.0, gt=1, description="Alarm when the grad norm exceeds its running median by this factor.")
    dead_threshold: FiniteFloat = Field(0.9, gt=0, le=1, description="Alarm when a block's dead-unit fraction exceeds this.")


# ---------------------------------------------------------------------------------------- spec


class RunSpec(Section):
    name: str = Field("quickstart", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Short name, part of the run id.")
    data: DataSpec = Field(default_factory=DataSpec, description="Data source and split.")
    augment: AugmentSpec = Field(default_factory=AugmentSpec, description="Training-time augmentation (on the device).")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Architecture.")
    optim: OptimSpec = Field(default_factory=SGDSpec, description="Optimizer and per-layer learning rates.")
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec, description="Learning-rate schedule.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="The training loop.")
    swa: SwaSpec = Field(default_factory=SwaSpec, description="Stochastic weight averaging.")
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec, description="Evaluation, TTA and calibration.")
    monitor: MonitorSpec = Field(default_factory=MonitorSpec, description="Instrument cadences and alarms.")

    @model_validator(mode="before")
    @classmethod
    def _default_optimizer(cls, data: Any) -> Any:
        # an [optim] table without `name` means SGD, like the default
        if isinstance(data, dict) and isinstance(data.get("optim"), dict) and "name" not in data["optim"]:
            data = dict(data, optim=dict(data["optim"], name="sgd"))
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> RunSpec:
        # one "dotted.path: message" line per problem; `validate` files each under its path
        problems = [*_data_problems(self.data), *_schedule_problems(self), *_finishing_problems(self)]
        if problems:
            raise ValueError("\n".join(f"{where}: {msg}" for where, msg in problems))
        return self

    def swa_start_epoch(self) -> int:
        """The first epoch (0-based) that averages weights."""
        s = self.swa.start
        return int(s) - 1 if s >= 1 else int(s * self.train.epochs)


# -------------------------------------------------------------------------- fields checked together


def _data_problems(d: DataSpec) -> list[tuple[str, str]]:
    out = []
    sizes = d.known_sizes()
    if sizes and d.val_size > sizes[0] - 2:  # a training batch needs two images (BatchNorm)
        what = "data.synthetic_train" if d.source == "synthetic" else d.source
        out.append(("data.val_size", f"is {d.val_size:,} but the training set has only {sizes[0]:,} images ({what}): "
                                     f"set it to {sizes[0] - 2:,} or less, so that two are left to train on (0 turns the split off)"))
    if d.source == "synthetic":
        need = (d.synthetic_train + d.synthetic_test) * 3 * d.image_size**2
        if need > MAX_SYNTHETIC_BYTES:
            out.append(("data.synthetic_train", f"{d.synthetic_train:,} + {d.synthetic_test:,} synthetic images of "
                        f"{d.image_size}x{d.image_size} need {need / 2**30:.1f} GiB of memory, over the "
                        f"{MAX_SYNTHETIC_BYTES // 2**30} GiB limit: lower data.synthetic_train, data.synthetic_test or data.image_size"))
    return out


def _schedule_problems(spec: RunSpec) -> list[tuple[str, str]]:
    s, epochs = spec.schedule, spec.train.epochs
    if s.name == "onecycle" or s.warmup_epochs == 0:
        return []
    if s.warmup_epochs >= epochs:
        return [("schedule.warmup_epochs", f"is {s.warmup_epochs:g} but train.epochs is {epochs}: the warmup must end before the run does")]
    if s.name == "step" and s.milestones and s.warmup_epochs >= s.milestones[0] * epochs:
        return [("schedule.warmup_epochs", f"{s.warmup_epochs:g} epochs of warmup reach past the first milestone "
                                           f"(epoch {s.milestones[0] * epochs:g} of {epochs}): shorten the warmup or move schedule.milestones later")]
    return []


def _finishing_problems(spec: RunSpec) -> list[tuple[str, str]]:
    out = []
    ev, swa = spec.evaluate, spec.swa
    if ev.calibrate and spec.data.val_size == 0:
        out.append(("evaluate.calibrate", "needs a validation split: set data.val_size > 0"))
    if ev.tta and not ev.tta_views and ev.tta_random_views == 0:
        out.append(("evaluate.tta_views", "TTA needs at least one view: list some or set evaluate.tta_random_views > 0"))
    if swa.enabled and swa.start >= 1 and swa.start > spec.train.epochs:
        out.append(("swa.start", f"is epoch {swa.start:g} but train.epochs is {spec.train.epochs}: SWA must start within the run"))
    return out


# ------------------------------------------------------------------------------------- TOML io

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
        errors = []
        for dotted, msg in (p for err in exc.errors() for p in _problems(err)):
            pos = _locate(text, dotted) if text and source else None
            errors.append((f"{dotted} ({source}:{pos})" if pos else dotted, msg))
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
    if not p.is_file():
        raise SpecError([(str(p), "no such preset file" if not p.exists() else "not a file")], str(p))
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
