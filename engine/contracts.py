"""Everything that crosses the run store, typed once: commands, results, the metric catalogue, usage errors.

The worker, the CLI, the TUI and the reports run in different processes and meet only in `run.db`.
This module is what they agree on. It is torch-free (the TUI imports it) and has no UI imports.

* Commands: one pydantic model per kind, joined in the discriminated union `Command`. A command is
  validated when it is written (`Run.send_command`) and again when the worker reads it, so a set-lr of
  NaN never reaches the optimizer and a damaged row is refused, not fatal.
* Results: one versioned model per result kind (`calibrate`, `tta`, `swa`, ...), validated on write
  and on read. Each names its headline accuracy (`headline_acc`), so a view never guesses keys.
* Metrics: `metric_info(name)` gives the label, unit, format and group of any metric name the engine
  writes, including the per-layer, per-group and per-block families.
* Run meta: the typed parts of a run's meta that the engine writes and the views read (`inference`:
  what predict and export need; `runtime`: what actually ran).
* `UsageError` (from engine.errors): the base of every error a user fixes by changing their input; the CLI
  exits 2 on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from typing import Annotated, Any, ClassVar, Literal, TypedDict, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from .errors import UsageError  # defined without pydantic, for the store; one class, re-exported here

__all__ = [
    "UsageError", "CommandError",
    "Stop", "Pause", "Continue", "Checkpoint", "SetLR", "StartSWA", "Calibrate", "TTA", "Confusion",
    "Command", "COMMAND_KINDS", "PASS_COMMANDS", "PassCommand", "parse_command", "command_args",
    "ResultModel", "CalibrationResult", "TTAResult", "SWAResult", "EnsembleResult", "LRFindResult",
    "ConfusionResult", "HardestResult", "RESULT_MODELS", "parse_result", "SlowOnCPU",
    "InferenceInfo", "RuntimeInfo", "meta_model", "NOT_CALIBRATED",
    "MetricInfo", "METRICS", "SYSTEM_GPU", "metric_info", "format_metric",
    "RunMeta", "RunState",
]


class CommandError(UsageError, ValueError):
    """A command that does not validate (unknown kind, bad argument)."""


# ------------------------------------------------------------------------------------- run meta

RunState = Literal["created", "running", "paused", "finished", "stopped", "failed", "crashed"]


class RunMeta(TypedDict, total=False):
    """A run's meta, the key-value table in run.db: written through `Run.set_meta(**keys)`, read with
    `Run.meta()` (a key a run never wrote is absent). A test holds every writer to these keys."""

    # made with the run (Run.create)
    schema_version: int
    run_id: str
    name: str  # the spec's name
    preset: str  # the preset it came from (a path or a name)
    host: str
    created: float  # unix seconds
    # its life (the worker, the launcher, the reaper)
    state: RunState
    pid: int  # the worker's (or torchrun's) process id; while a resume is being launched, the launcher's
    pid_start: str | None  # the start token of that process (engine.store.process): a reused pid is another process
    heartbeat: float  # unix seconds of the worker's last beat (or its spawn): engine.store.liveness
    started: float
    ended: float
    error: str  # why it failed, crashed or stopped early
    error_kind: Literal["usage", "crash", "training"]
    resume: bool  # the next worker continues from last.pt
    kind: str  # "lr_find" for an LR range test (no worker, no model); absent for a training run
    phase: dict[str, Any] | None  # before the first step: {name, detail, done, total, since}
    # what the worker found
    torch_version: str
    device: str
    gpus: list[dict[str, Any]]
    total_steps: int
    steps_per_epoch: int
    epochs: int
    runtime: dict[str, Any]  # what actually runs: a RuntimeInfo, dumped (device, precision, compile, versions)
    inference: dict[str, Any]  # what predict and export need: an InferenceInfo, dumped (classes, normalization, size)
    # data-parallel runs (torchrun)
    launcher: str
    nproc_per_node: int
    nnodes: int
    rdzv_endpoint: str
    world_size: int
    backend: str
    head: bool  # on the node whose cockpit owns the run store
    store_rank: int
    rank_pids: dict[str, list[Any]]  # rank -> [pid, host]
    role: str  # "secondary" on a node that does not hold the store
    store: str  # on a secondary node: where the run store is
    sync_bn: bool
    # a sweep's trial
    sweep: str
    sweep_trial: int
    sweep_config: str
    sweep_seed: int
    sweep_storage: str  # redacted: never a password
    sweep_outcome: str


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


# -------------------------------------------------------------------------------------- results


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ResultModel(_Part):
    """A result row's data. `KIND` is the results table's kind; `version` is the shape's version."""
    KIND: ClassVar[str] = ""
    HEADLINE: ClassVar[str] = ""  # the field holding `headline_acc` (dotted when nested), "" for none
    version: Literal[1] = 1

    @property
    def headline_acc(self) -> float | None:
        """The accuracy this result is about (the one a results table shows), if it has one."""
        return reduce(getattr, self.HEADLINE.split("."), self) if self.HEADLINE else None


class SplitStats(_Part):
    nll: float
    ece: float
    acc: float


class ReliabilityBin(_Part):
    lower: float
    upper: float
    conf: float | None  # None for an empty bin
    acc: float | None
    count: int


class Reliability(_Part):
    before: list[ReliabilityBin]
    after: list[ReliabilityBin]


class BeforeAfter(_Part):
    before: float
    after: float


# how a temperature is fitted (engine.evaluate), as every view names it
CALIBRATE_METHODS: dict[str, str] = {
    "log_t": "LBFGS on log T from T = 1 with a line search",
    "guide": "the guide's procedure: LBFGS lr 0.01 on T from 1.5, 50 steps",
}


class CalibrationResult(ResultModel):
    """Temperature scaling fitted on the validation split; `before`/`after` are the test set."""
    KIND: ClassVar[str] = "calibrate"
    HEADLINE: ClassVar[str] = "after.acc"
    before: SplitStats
    after: SplitStats
    temperature: float
    method: Literal["log_t", "guide"] = "log_t"  # how T was fitted (engine.evaluate); results stored before it: log_t
    reliability: Reliability
    val_nll: BeforeAfter
    bins: int
    val_size: int
    test_size: int
    checkpoint: str
    step: int
    # the weights it was fitted on (engine.checkpoint.weights_digest): the temperature belongs to them
    # alone, never to a later best.pt; "" in results stored before it was recorded (they apply to nothing)
    weights_sha256: str = ""


class TTAResult(ResultModel):
    """Test-time augmentation on the test set: the identity view (`base_*`) and the combined views.

    The random views are drawn from `seed`. Over several draws (`draws` > 1, seeds `draw_seeds`:
    seed, seed + 1, ...) `tta_acc`, `tta_loss`, `ece`, `views` and `delta` are the means over the
    draws, `draw_accs` each draw's accuracy and `tta_acc_std` their sample standard deviation (n - 1)."""
    KIND: ClassVar[str] = "tta"
    HEADLINE: ClassVar[str] = "tta_acc"
    base_acc: float
    base_loss: float
    tta_acc: float
    tta_loss: float
    delta: float
    ece: float
    views: dict[str, float]
    combine: Literal["logits", "probs"]
    n_views: int
    random_views: int
    seed: int
    checkpoint: str
    step: int
    draws: int = 1
    draw_seeds: list[int] = Field(default_factory=list)
    draw_accs: list[float] = Field(default_factory=list)
    tta_acc_std: float | None = None  # sample std over the draws; None for one draw

    @property
    def seeds_text(self) -> str:
        """'seed 0', or 'seeds 0-4' over draws: what a view prints beside the figure."""
        if not self.random_views:
            return "no random views"
        if self.draws > 1 and self.draw_seeds:
            return f"seeds {self.draw_seeds[0]}-{self.draw_seeds[-1]}"
        return f"seed {self.seed}"
    weights_sha256: str = ""  # the weights measured (engine.checkpoint.weights_digest); "" in older results


class SWAResult(ResultModel):
    """The SWA model against the model it averaged from (`base_*`), on the test set."""
    KIND: ClassVar[str] = "swa"
    HEADLINE: ClassVar[str] = "swa_acc"
    base_acc: float
    swa_acc: float
    delta: float
    test_acc: float
    test_loss: float
    epochs: int
    base_loss: float | None = None
    lr: float | None = None
    anneal_epochs: int | None = None
    anneal_strategy: str | None = None
    base_step: int | None = None
    step: int | None = None
    source: str | None = None  # the checkpoint an offline SWA pass continued from
    checkpoint: str | None = None


class EnsembleMember(_Part):
    run: str
    acc: float
    nll: float
    checkpoint: str | None = None


class EnsembleResult(ResultModel):
    """Several runs' models on one test set: mean probability, majority vote (a tie to the highest mean
    probability) and the guide's `torch.mode` vote (a tie to the lowest class index)."""
    KIND: ClassVar[str] = "ensemble"
    HEADLINE: ClassVar[str] = "mean_prob_acc"
    members: list[EnsembleMember]
    vote_acc: float  # majority vote, a tie to the tied class with the highest mean probability
    mean_prob_acc: float
    best_member_acc: float
    gain: float  # mean-probability accuracy minus the best member's
    vote_gain: float  # majority-vote accuracy minus the best member's
    mode_vote_acc: float | None = None  # the guide's torch.mode vote (None in results stored before it was)
    mode_vote_gain: float | None = None  # its accuracy minus the best member's
    nll: float  # of the mean probability
    checkpoints: list[str] = []


class LRPoint(_Part):
    step: int
    lr: float
    loss: float
    smooth: float


class LRFindResult(ResultModel):
    """The LR range test: the loss along an exponential LR sweep and the suggested LR."""
    KIND: ClassVar[str] = "lr_find"
    suggested_lr: float
    method: str
    min_loss_lr: float
    steepest_lr: float | None
    points: list[LRPoint]
    start_lr: float
    end_lr: float
    steps: int
    stopped_early: bool
    stop_reason: str
    optimizer: str


class ConfusionResult(ResultModel):
    """Rows: true class; columns: predicted class. `per_class_acc` is None for a class with no sample."""
    KIND: ClassVar[str] = "confusion"
    classes: list[str]
    matrix: list[list[int]]
    per_class_acc: list[float | None]
    checkpoint: str


class HardExample(_Part):
    index: int
    label: int
    pred: int
    loss: float
    thumb: str = ""  # a small RGB thumbnail (engine.thumbs), "" where none was stored


class HardestResult(ResultModel):
    """The test examples with the highest loss at one evaluation."""
    KIND: ClassVar[str] = "hardest"
    examples: list[HardExample]
    classes: list[str] = []  # the data set's class names (label and pred index into it); [] in older runs


RESULT_MODELS: dict[str, type[ResultModel]] = {
    m.KIND: m for m in (CalibrationResult, TTAResult, SWAResult, EnsembleResult, LRFindResult, ConfusionResult,
                        HardestResult)
}


def parse_result(kind: str, data: dict[str, Any]) -> ResultModel:
    """The typed result for a stored kind and its data (pydantic's ValidationError if it does not fit)."""
    model = RESULT_MODELS.get(kind)
    if model is None:
        raise ValueError(f"unknown result kind {kind!r}; known: {', '.join(RESULT_MODELS)}")
    return model.model_validate(data)


# -------------------------------------------------------------------------------------- events


class SlowOnCPU(_Part):
    """The event a worker training on a CPU writes once, after its first metrics window, when its
    estimate of the time to the end is over an hour: the preset is sized for a GPU (the live view,
    the dashboard and worker.log say so, naming the CPU recipe)."""

    KIND: ClassVar[str] = "slow_on_cpu"
    LIMIT_S: ClassVar[float] = 3600.0
    eta_s: float  # the steps left at the first window's pace (evaluations not counted)
    images_per_s: float
    recipe: str = "cpu_cifar10"  # "" when the run is that recipe already

    def message(self) -> str:
        hours = self.eta_s / 3600
        eta = f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.1f} hours"
        advice = f": the preset is sized for a GPU; `cockpit run {self.recipe}` is the CPU recipe" if self.recipe else ""
        return f"at {self.images_per_s:,.0f} images/s (its first window) this run needs about {eta} more on this CPU{advice}"


# ------------------------------------------------------------------------------------- run meta

NOT_CALIBRATED = "not calibrated for this checkpoint (run cockpit calibrate)"


class InferenceInfo(_Part):
    """Meta `inference`: what predict and export need, stored when the run first trains, so neither ever
    opens the dataset (a renamed class folder would shift every label, a moved one fail, a CIFAR preset
    download). Images go in as `channels` x `height` x `width` floats in [0, 1], channels in
    `channel_order`, and are normalized with `mean` and `std` (what the model trained with: the spec's
    figures or the training set's; 0 and 1 when the spec does not normalize)."""
    version: Literal[1] = 1
    classes: list[str]  # in label order: output i is classes[i]
    mean: list[float]
    std: list[float]
    channels: int
    height: int
    width: int
    channel_order: Literal["RGB", "L"]
    test_images: int  # the test set the run's test accuracy is measured on


class RuntimeInfo(_Part):
    """Meta `runtime`: what actually ran (the spec says what was asked): the device, the precision with
    `auto` resolved, the compile mode, the memory format and the library versions."""
    version: Literal[1] = 1
    device: str  # the torch device, e.g. "cuda:0" or "cpu"
    precision: Literal["fp32", "bf16 autocast", "fp16 autocast + GradScaler"]
    compile: str  # "off", or "torch.compile (mode default)"
    memory_format: Literal["channels_last", "contiguous"]
    torch: str
    cuda: str | None  # the CUDA version of the torch build, where the run trains on CUDA; None on the CPU
    cudnn: str | None  # the cuDNN version in use; None without one


def meta_model(meta: dict[str, Any], key: str, model: type[_Part]) -> Any:
    """A typed part of a run's meta, or None where it is absent (an older run) or does not fit."""
    value = meta.get(key)
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


# -------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricInfo:
    """How every view names, formats and groups one metric.

    `fmt` is a format spec for `format(value, fmt)`; `log` says a chart of it reads best on a log scale."""
    name: str
    label: str
    unit: str = ""
    fmt: str = ".4g"
    group: str = "other"
    log: bool = False

    def format(self, value: float | None) -> str:
        return format_metric(self, value)


def _m(name: str, label: str, unit: str = "", fmt: str = ".4g", group: str = "other", log: bool = False) -> MetricInfo:
    return MetricInfo(name, label, unit, fmt, group, log)


PCT, LOSS = ".2%", ".4f"
# the catalogue, in the order a reader wants them (reports list key metrics in this order)
METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    _m("test_acc", "test accuracy", "", PCT, "accuracy"),
    _m("test_loss", "test loss", "", LOSS, "loss"),
    _m("val_acc", "val accuracy", "", PCT, "accuracy"),
    _m("val_loss", "val loss", "", LOSS, "loss"),
    _m("train_acc", "train accuracy", "", PCT, "accuracy"),
    _m("train_loss", "train loss", "", LOSS, "loss"),
    _m("swa_test_acc", "SWA test accuracy", "", PCT, "accuracy"),
    _m("swa_test_loss", "SWA test loss", "", LOSS, "loss"),
    _m("swa_val_acc", "SWA val accuracy", "", PCT, "accuracy"),
    _m("swa_val_loss", "SWA val loss", "", LOSS, "loss"),
    _m("lr", "learning rate", "", ".3g", "lr"),
    _m("grad_norm", "grad norm", "", ".3g", "grad", log=True),
    _m("grad_norm_max", "grad norm (max)", "", ".3g", "grad", log=True),
    _m("act/saturation", "activation saturation", "", PCT, "activations"),
    _m("act/dead", "dead units", "", PCT, "activations"),
    _m("act/gate", "gate saturation", "", PCT, "activations"),
    _m("difficulty/p10", "per-sample loss p10", "", ".3g", "difficulty"),
    _m("difficulty/p50", "per-sample loss p50", "", ".3g", "difficulty"),
    _m("difficulty/p90", "per-sample loss p90", "", ".3g", "difficulty"),
    _m("difficulty/max", "per-sample loss max", "", ".3g", "difficulty"),
    _m("images_per_s", "images / s", "images/s", ",.0f", "throughput"),
    _m("step_time_ms", "step time", "ms", ",.1f", "throughput"),
    _m("data_time_ms", "data time", "ms", ",.1f", "throughput"),
    _m("memory_gb", "peak memory", "GB", ".2f", "throughput"),
    _m("loss_scale", "AMP loss scale", "", ",.0f", "throughput"),
    _m("skipped_steps", "skipped steps (window)", "steps", ",.0f", "health"),
    _m("skipped_total", "skipped steps (total)", "steps", ",.0f", "health"),
    _m("system/cpu", "CPU (all cores)", "", ".0%", "system"),
    _m("system/ram", "RAM used", "", ".0%", "system"),
    _m("system/ram_gb", "RAM used", "GB", ".1f", "system"),
    _m("system/worker_ram_gb", "worker RSS", "GB", ".2f", "system"),
    _m("system/disk", "disk used (run dir)", "", ".0%", "system"),
)}

# per GPU, `system/gpu<cuda index>/<what>` (engine/system.py samples them)
SYSTEM_GPU: dict[str, MetricInfo] = {m.name: m for m in (
    _m("util", "GPU utilisation", "", ".0%", "system"),
    _m("mem", "GPU memory used", "", ".0%", "system"),
    _m("mem_gb", "GPU memory used", "GB", ".1f", "system"),
    _m("temp_c", "GPU temperature", "°C", ".0f", "system"),
    _m("power_w", "GPU power", "W", ".0f", "system"),
)}

# families: a prefix, then a layer / group / block name (the label gets the name appended)
_FAMILIES: tuple[MetricInfo, ...] = (
    _m("lr/", "learning rate", "", ".3g", "lr"),
    _m("grad_norm/", "grad norm", "", ".3g", "grad", log=True),
    _m("update_ratio/", "update ratio", "", ".3g", "grad", log=True),
    _m("act/zeros/", "zeros", "", PCT, "activations"),
    _m("act/dead/", "dead units", "", PCT, "activations"),
    _m("act/saturation/", "saturation", "", PCT, "activations"),
    _m("act/mean/", "activation mean", "", ".3g", "activations"),
    _m("act/std/", "activation std", "", ".3g", "activations"),
    _m("act/gate/", "gate saturation", "", PCT, "activations"),
    _m("act/gate_mean/", "gate mean", "", ".3g", "activations"),
    _m("difficulty/hist/", "per-sample loss histogram bin", "", PCT, "difficulty"),
    _m("lrfind/", "LR range test", "", ".4g", "lr_find"),
    _m("system/", "system", "", ".4g", "system"),
)


def metric_info(name: str) -> MetricInfo:
    """The catalogue entry for any metric name; unknown names get a plain, generic entry."""
    info = METRICS.get(name)
    if info is not None:
        return info
    if name.startswith("system/gpu") and name.count("/") == 2:
        gpu, what = name.split("/")[1:]
        if (g := SYSTEM_GPU.get(what)) is not None:
            return MetricInfo(name, f"{g.label} ({gpu})", g.unit, g.fmt, g.group)
    for fam in _FAMILIES:
        if name.startswith(fam.name):
            part = name[len(fam.name):]
            return MetricInfo(name, f"{fam.label} {part}", fam.unit, fam.fmt, fam.group, fam.log)
    return MetricInfo(name, name.replace("_", " "))


def format_metric(info: MetricInfo | str, value: float | None) -> str:
    """A value as every view shows it: "–" for a missing one, "nan"/"inf" spelled out."""
    if isinstance(info, str):
        info = metric_info(info)
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, info.fmt)
