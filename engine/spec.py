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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
]

MODELS = ("tiny", "fastnet", "resnet18", "resnet34", "resnet50")
OPTIMIZERS = ("sgd", "adamw", "adam", "rmsprop")


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
        "", description="Dataset folder. Empty: $COCKPIT_DATA, else ~/.cache/cockpit/data. For 'folder', the tree with train/ and test/."
    )
    download: bool = Field(True, description="Download CIFAR into root when it is missing.")
    val_size: int = Field(0, ge=0, description="Images carved from train (seeded) for validation, calibration and model selection.")
    synthetic_train: int = Field(2048, ge=1, description="Synthetic source: number of training images.")
    synthetic_test: int = Field(512, ge=1, description="Synthetic source: number of test images.")
    synthetic_classes: int = Field(10, ge=2, le=1000, description="Synthetic source: number of classes.")
    image_size: int = Field(32, ge=8, le=512, description="Synthetic source: image side in pixels.")


# ------------------------------------------------------------------------------------- augment


class ResizedCropSpec(Section):
    enabled: bool = Field(False, description="RandomResizedCrop back to the input size.")
    scale: tuple[float, float] = Field((0.08, 1.0), description="Range of the cropped area as a fraction of the image.")
    ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="Range of the crop's aspect ratio.")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] <= v[1] <= 1):
            raise ValueError("needs 0 < min <= max <= 1")
        return v

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] <= v[1]):
            raise ValueError("needs 0 < min <= max")
        return v


class ColorJitterSpec(Section):
    p: float = Field(0.0, ge=0, le=1, description="Probability that an image gets color jitter (RandomApply).")
    brightness: float = Field(0.2, ge=0, description="Brightness factor drawn from [1-b, 1+b].")
    contrast: float = Field(0.2, ge=0, description="Contrast factor drawn from [1-c, 1+c].")
    saturation: float = Field(0.2, ge=0, description="Saturation factor drawn from [1-s, 1+s].")
    hue: float = Field(0.1, ge=0, le=0.5, description="Hue shift drawn from [-h, h] (fraction of a turn).")


class ErasingSpec(Section):
    p: float = Field(0.0, ge=0, le=1, description="Probability that an image gets a random erased rectangle.")
    scale: tuple[float, float] = Field((0.02, 0.33), description="Range of the erased area as a fraction of the image.")
    ratio: tuple[float, float] = Field((0.3, 3.3), description="Range of the erased rectangle's aspect ratio.")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] <= v[1] <= 1):
            raise ValueError("needs 0 < min <= max <= 1")
        return v


class AugmentSpec(Section):
    flip: float = Field(0.5, ge=0, le=1, description="Probability of a horizontal flip.")
    translate: int = Field(0, ge=0, le=16, description="Pad-and-random-crop by up to this many pixels (speed-record fast path); 0 is off.")
    cutout: int = Field(0, ge=0, le=32, description="Side of a zeroed square at a random place (speed-record cutout); 0 is off.")
    resized_crop: ResizedCropSpec = Field(default_factory=ResizedCropSpec, description="RandomResizedCrop.")
    color_jitter: ColorJitterSpec = Field(default_factory=ColorJitterSpec, description="ColorJitter under RandomApply.")
    grayscale: float = Field(0.0, ge=0, le=1, description="Probability of RandomGrayscale.")
    rotation: float = Field(0.0, ge=0, le=180, description="RandomRotation: angle drawn from [-degrees, degrees]; 0 is off.")
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
    width: float = Field(1.0, gt=0, le=8, description="Channel width multiplier.")


# --------------------------------------------------------------------------------------- optim


class _OptimBase(Section):
    lr: float = Field(0.05, gt=0, le=100, description="Base learning rate (peak LR for warmup and one-cycle).")
    weight_decay: float = Field(5e-4, ge=0, le=1, description="Weight decay.")
    no_decay_bn_bias: bool = Field(True, description="Exempt BatchNorm and bias parameters from weight decay.")
    layer_lr: dict[str, float] = Field(
        default_factory=dict,
        description="Per-layer LR multipliers by parameter-name prefix, e.g. {stem = 0.1, fc = 2.0}; each becomes a param group.",
    )

    @field_validator("layer_lr")
    @classmethod
    def _layer_lr(cls, v: dict[str, float]) -> dict[str, float]:
        for prefix, mult in v.items():
            if mult <= 0:
                raise ValueError(f"multiplier for {prefix!r} must be > 0, got {mult}")
        return v


class SGDSpec(_OptimBase):
    name: Literal["sgd"] = Field("sgd", description="Optimizer.")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum.")
    nesterov: bool = Field(False, description="Nesterov momentum.")


class AdamWSpec(_OptimBase):
    name: Literal["adamw"] = Field("adamw", description="Optimizer.")
    lr: float = Field(1e-3, gt=0, le=100, description="Base learning rate (peak LR for warmup and one-cycle).")
    weight_decay: float = Field(0.05, ge=0, le=1, description="Decoupled weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")


class AdamSpec(AdamWSpec):
    name: Literal["adam"] = Field("adam", description="Optimizer.")  # type: ignore[assignment]
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 weight decay (coupled).")


class RMSpropSpec(_OptimBase):
    name: Literal["rmsprop"] = Field("rmsprop", description="Optimizer.")
    lr: float = Field(1e-3, gt=0, le=100, description="Base learning rate.")
    alpha: float = Field(0.99, gt=0, lt=1, description="Smoothing constant.")
    momentum: float = Field(0.0, ge=0, lt=1, description="Momentum.")


OptimSpec = Annotated[Union[SGDSpec, AdamWSpec, AdamSpec, RMSpropSpec], Field(discriminator="name")]


# ------------------------------------------------------------------------------------ schedule


class ScheduleSpec(Section):
    name: Literal["constant", "step", "cosine", "onecycle"] = Field("cosine", description="LR schedule, stepped every iteration.")
    warmup_epochs: float = Field(0.0, ge=0, description="Linear warmup from 0 (constant, step, cosine).")
    min_lr: float = Field(0.0, ge=0, le=1, description="Cosine floor as a fraction of the base LR.")
    milestones: list[float] = Field(
        default_factory=lambda: [0.5, 0.75], description="Step schedule: fractions of training where the LR is multiplied by gamma."
    )
    gamma: float = Field(0.1, gt=0, le=1, description="Step schedule: factor at each milestone.")
    pct_start: float = Field(0.25, gt=0, lt=1, description="One-cycle: fraction of training spent rising to the peak.")
    div_factor: float = Field(25.0, ge=1, description="One-cycle: start LR = peak / div_factor.")
    final_div_factor: float = Field(1e3, ge=1, description="One-cycle: final LR = start LR / final_div_factor.")

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, v: list[float]) -> list[float]:
        if any(not 0 < m < 1 for m in v) or v != sorted(v):
            raise ValueError("milestones must be increasing fractions in (0, 1)")
        return v


# --------------------------------------------------------------------------------------- train


class TrainSpec(Section):
    epochs: int = Field(3, ge=1, le=10_000, description="Training epochs.")
    batch_size: int = Field(128, ge=1, le=65_536, description="Training batch size.")
    eval_batch_size: int = Field(1024, ge=1, le=65_536, description="Evaluation batch size.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        "auto", description="Mixed precision on CUDA: auto = bf16 where supported, else fp16 with GradScaler. CPU runs fp32."
    )
    channels_last: bool = Field(True, description="channels_last memory format on CUDA.")
    compile: bool = Field(False, description="torch.compile the model.")
    grad_clip: float = Field(0.0, ge=0, description="Clip the global grad norm to this value; 0 is off.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Cross-entropy label smoothing.")
    seed: int = Field(0, ge=0, description="Seed for weights, data order, augmentation and the validation split.")
    threads: int = Field(0, ge=0, le=512, description="CPU threads for torch; 0 keeps torch's default.")
    checkpoint_every: int = Field(1, ge=1, description="Write the 'last' checkpoint every this many epochs.")
    sync_bn: bool = Field(
        False, description="Under several processes (--nproc-per-node/--nnodes > 1): SyncBatchNorm (CUDA only)."
    )


# ----------------------------------------------------------------------------------------- swa


class SwaSpec(Section):
    enabled: bool = Field(False, description="Stochastic weight averaging over the end of training.")
    start: float = Field(0.75, gt=0, description="When SWA starts: an epoch number if >= 1, else a fraction of training.")
    lr: float = Field(0.05, gt=0, description="SWA learning rate (SWALR target).")
    anneal_epochs: int = Field(1, ge=0, description="Epochs to anneal from the schedule's LR to the SWA LR.")
    anneal_strategy: Literal["cos", "linear"] = Field("cos", description="SWALR annealing shape.")


# ------------------------------------------------------------------------------------ evaluate


class EvaluateSpec(Section):
    every: int = Field(1, ge=1, description="Evaluate on the test (and validation) set every this many epochs.")
    tta: bool = Field(False, description="Run TTA evaluation at the end of training.")
    tta_views: list[Literal["identity", "flip", "translate"]] = Field(
        default_factory=lambda: ["identity", "flip"], description="Deterministic TTA views."
    )
    tta_translate: int = Field(2, ge=1, le=8, description="Pixels for the 'translate' views (four directions).")
    tta_random_views: int = Field(0, ge=0, le=64, description="Extra randomly augmented TTA views (seeded).")
    tta_combine: Literal["logits", "probs"] = Field("logits", description="Average TTA views' logits or probabilities.")
    calibrate: bool = Field(False, description="Fit a temperature on the validation split at the end of training.")
    ece_bins: int = Field(15, ge=2, le=100, description="Bins for the expected calibration error.")
    hardest: int = Field(16, ge=0, le=1000, description="Hardest test examples recorded at each eval.")


# ------------------------------------------------------------------------------------- monitor


class MonitorSpec(Section):
    every: int = Field(10, ge=1, description="Steps between reads of the on-device step metrics (one host transfer each).")
    grad_flow_every: int = Field(10, ge=0, description="Steps between per-group grad norm and update/weight ratios; 0 is off.")
    activations_every: int = Field(100, ge=0, description="Steps between activation statistics (hooks attached only then); 0 is off.")
    difficulty_every: int = Field(50, ge=0, description="Steps between per-sample loss quantiles; 0 is off.")
    tensorboard: bool = Field(False, description="Also write TensorBoard events to runs/<id>/tb.")
    nonfinite_limit: int = Field(5, ge=1, description="Stop the run after this many non-finite steps in a row.")
    spike_factor: float = Field(10.0, gt=1, description="Alarm when the grad norm exceeds its running median by this factor.")
    dead_threshold: float = Field(0.9, gt=0, le=1, description="Alarm when a block's dead-unit fraction exceeds this.")


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
        if self.evaluate.calibrate and self.data.val_size == 0:
            raise ValueError("evaluate.calibrate needs a validation split: set data.val_size > 0")
        if self.swa.enabled and self.swa.start >= 1 and self.swa.start > self.train.epochs:
            raise ValueError(f"swa.start is epoch {self.swa.start:g} but train.epochs is {self.train.epochs}")
        return self

    def swa_start_epoch(self) -> int:
        """The first epoch (0-based) that averages weights."""
        s = self.swa.start
        return int(s) - 1 if s >= 1 else int(s * self.train.epochs)


# ------------------------------------------------------------------------------------- TOML io

_TAGGED_UNIONS = {("optim",)}  # pydantic puts the union tag in error locations; users never write it


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    for prefix in _TAGGED_UNIONS:
        n = len(prefix)
        if tuple(parts[:n]) == prefix and len(parts) > n and parts[n] in OPTIMIZERS:
            del parts[n]
    return ".".join(str(p) for p in parts) or "(top level)"


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "union_tag_invalid":
        msg = f"unknown optimizer {err['input']!r}; valid: {', '.join(OPTIMIZERS)}"
    elif err["type"] == "literal_error":
        msg = f"{msg}, got {err['input']!r}"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


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
        for err in exc.errors():
            dotted = _dotted(err["loc"])
            where = dotted
            if text and source:
                pos = _locate(text, dotted)
                if pos:
                    where = f"{dotted} ({source}:{pos})"
            errors.append((where, _message(err)))
        raise SpecError(errors, source) from None


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
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


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides in place; the value is parsed as TOML (bare words as strings)."""
    errors = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append((f"--set {item}", "expected KEY=VALUE, e.g. optim.lr=0.1"))
            continue
        is_layer_lr = key.startswith("optim.layer_lr.") and len(key.split(".")) == 3
        if key not in KNOWN_KEYS and not is_layer_lr:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; `cockpit spec schema` lists the keys"
            errors.append((key, f"unknown key{hint}"))
            continue
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word such as adamw or cifar10
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
