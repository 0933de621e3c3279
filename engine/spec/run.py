"""`RunSpec`, the whole spec, and the checks of fields that depend on each other."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from .stem_checks import stem_problems
from .sections import (
    MAX_SYNTHETIC_BYTES,
    TORCHVISION_PREFIX,
    AugmentSpec,
    DataSpec,
    EvaluateSpec,
    ModelSpec,
    MonitorSpec,
    OptimSpec,
    ScheduleSpec,
    Section,
    SGDSpec,
    SwaSpec,
    TrainSpec,
)


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
        problems = [*_data_problems(self.data), *_model_problems(self.model), *_schedule_problems(self),
                    *_finishing_problems(self), *_guide_problems(self), *stem_problems(self)]
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


def _model_problems(m: ModelSpec) -> list[tuple[str, str]]:
    if m.width != 1.0 and (m.name.startswith("efficientnet_") or m.name.startswith(TORCHVISION_PREFIX)):
        return [("model.width", f"is {m.width:g}, but {m.name} keeps its own width: leave model.width at 1 "
                                "(EfficientNet's b0..b7 variants are its widths)")]
    return []


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
    if ev.tta and ev.tta_recipe == "views" and not ev.tta_views and ev.tta_random_views == 0:
        out.append(("evaluate.tta_views", "TTA needs at least one view: list some or set evaluate.tta_random_views > 0"))
    if swa.enabled and swa.start >= 1 and swa.start > spec.train.epochs:
        out.append(("swa.start", f"is epoch {swa.start:g} but train.epochs is {spec.train.epochs}: SWA must start within the run"))
    return out


def _guide_problems(spec: RunSpec) -> list[tuple[str, str]]:
    """Options the guide's recipes need beyond the defaults: fixed normalization, absolute per-layer LRs."""
    out = []
    a, o = spec.augment, spec.optim
    if len(a.mean) != len(a.std) or len(a.mean) not in (0, 3):
        out.append(("augment.std", f"augment.mean has {len(a.mean)} values and augment.std {len(a.std)}: give both "
                                   "three (R, G, B), or leave both empty for the dataset's own statistics"))
    if o.unlisted == "freeze" and not o.layer_lr:
        out.append(("optim.unlisted", "is 'freeze' but optim.layer_lr names no layer, so nothing would train: "
                                      "list the layers to train in optim.layer_lr, or set optim.unlisted = 'train'"))
    return out
