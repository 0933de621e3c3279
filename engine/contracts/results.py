"""Results a pass stores with a run: one versioned pydantic model per kind, validated on write and on
read, each naming its headline accuracy; and the typed events that carry data."""

from __future__ import annotations

from functools import reduce
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


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
