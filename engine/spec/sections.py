"""The spec's sections: one strict pydantic model per part of a run, and the bounds every value keeps.

Every float is a `FiniteFloat` (never inf or NaN) and every count has an upper bound, so whatever
validates is something the worker can use; what depends on other fields is checked in `run.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, AllowInfNan, BaseModel, ConfigDict, Field, field_validator

MODELS = ("tiny", "fastnet", "resnet18", "resnet34", "resnet50", *(f"efficientnet_b{i}" for i in range(8)))
TORCHVISION_PREFIX = "torchvision:"  # then any torchvision classification model's name
OPTIMIZERS = ("sgd", "adamw", "adam", "rmsprop")

FiniteFloat = Annotated[float, AllowInfNan(False)]
"""A float that is never inf or NaN: every float field of the spec is one."""

MAX_SEED = 2**63 - 1  # fits SQLite's INTEGER and torch.manual_seed, with room for seed + step
MAX_EPOCHS = 10_000
MAX_STEPS = 1_000_000  # the largest cadence or limit counted in steps
MAX_IMAGES = 1_000_000  # per synthetic split, and the largest validation split
MAX_SYNTHETIC_BYTES = 8 * 2**30  # the synthetic set lives in memory as uint8
MAX_NAME_BYTES = 255  # one folder name, on every common file system
DATASET_SIZES = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000)}  # (train, test) images


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
    # the data's own seed, so runs that differ only in their init seed share their data
    seed: int = Field(
        0, ge=0, le=MAX_SEED,
        description="Seed for the validation split and the synthetic images (weights, order and augmentation use train.seed).")

    @field_validator("root")
    @classmethod
    def _usable_path(cls, v: str) -> str:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
            raise ValueError("must not contain control characters (such as NUL or a newline)")
        longest = max((len(part.encode("utf-8", "surrogatepass")) for part in re.split(r"[/\\]", v)), default=0)
        if longest > MAX_NAME_BYTES:
            raise ValueError(f"has a folder name of {longest} bytes; file systems allow at most {MAX_NAME_BYTES}")
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
    # the guide normalizes with fixed figures; empty lists keep the dataset's own statistics
    mean: list[FiniteFloat] = Field(
        default_factory=list, max_length=3,
        description="Normalize with this per-channel mean (R, G, B in [0, 1]) instead of the dataset's; empty: the dataset's.")
    std: list[Annotated[FiniteFloat, Field(gt=0)]] = Field(
        default_factory=list, max_length=3,
        description="Normalize with this per-channel std instead of the dataset's; empty: the dataset's (set with mean).")
    # airbench's flip
    alternate_flip: bool = Field(
        False, description="Flip each image on alternate epochs (airbench; a seeded half of the images starts flipped) "
                           "instead of at random: `flip` is then not read.")


# --------------------------------------------------------------------------------------- model


def _model_name(name: str) -> str:
    if name in MODELS:
        return name
    if name.startswith(TORCHVISION_PREFIX):
        if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name.removeprefix(TORCHVISION_PREFIX)):
            return name  # whether torchvision has it is checked when the model is built
        raise ValueError(f"'{TORCHVISION_PREFIX}' must be followed by a torchvision model name such as resnet18")
    raise ValueError(f"unknown model; valid: {', '.join(MODELS)}, or {TORCHVISION_PREFIX}<name> for torchvision's")


class ModelSpec(Section):
    name: Annotated[str, AfterValidator(_model_name)] = Field(
        "tiny", max_length=80, description=(
            "Architecture: tiny (CPU smoke runs), fastnet (speed records), resnet18/34/50 (CIFAR ResNets), "
            "efficientnet_b0..b7 (torchvision's, stride-1 stem for 32x32), or torchvision:<name> for any "
            "torchvision classification model, adapted to small images."))
    stem: Literal["conv3x3", "3conv"] = Field("conv3x3", description="ResNet stem: one 3x3 conv, or the guide's three 3x3 convs.")
    # the guide's stem is 64-64-64 with a stride-2 first conv
    stem_channels: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=lambda: [32, 32, 64], min_length=3, max_length=3,
        description="ResNet '3conv' stem: output channels of its three convs (scaled by model.width).")
    stem_stride: int = Field(1, ge=1, le=2, description="ResNet stem: stride of its first conv (2 halves a 32x32 image before layer1).")
    se: bool = Field(False, description="Squeeze-and-excitation block in every residual block.")
    se_reduction: int = Field(16, ge=1, le=256, description="SE bottleneck reduction ratio.")
    width: FiniteFloat = Field(1.0, gt=0, le=8, description="Channel width multiplier.")
    # airbench's stem, init and BatchNorm (engine/models/options.py), for every model
    whiten: int = Field(
        0, ge=0, le=4, description="Whitening stem: a frozen k x k conv (k = this; airbench94: 2) from the training "
                                   "patches' covariance eigenvectors, 2*3*k*k channels and a GELU, in front of the model "
                                   "(fastnet: in place of its stem); 0 is off.")
    whiten_stride: int = Field(
        1, ge=1, le=4, description="Whitening stem: its stride (1: airbench94; k: non-overlapping patches, a lossless "
                                   "space-to-depth that halves the side at k = 2 and quarters the cost after it).")
    block_channels: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [64, 256, 256], min_length=3, max_length=3,
        description="fastnet: output channels of its three conv groups (scaled by model.width).")
    whiten_bias_epochs: int = Field(
        3, ge=0, le=MAX_EPOCHS, description="Epochs the whitening stem's bias trains; after them its LR is 0.")
    init: Literal["default", "dirac"] = Field(
        "default", description="default: the model's own init; dirac: PyTorch's default conv init with each conv's "
                               "first in_channels filters set to the identity (airbench).")
    bn_weight_frozen: bool = Field(False, description="BatchNorm weights fixed at 1, not trained (airbench).")
    bn_eps: FiniteFloat = Field(1e-5, gt=0, le=1, description="BatchNorm epsilon (airbench: 1e-12).")
    bn_momentum: FiniteFloat = Field(
        0.1, gt=0, le=1, description="BatchNorm running-statistics momentum, PyTorch's convention: the new batch's "
                                     "weight (airbench94: 0.4).")


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

    # the guide gives per-layer LRs as absolute values and leaves some parameters out
    layer_lr_mode: Literal["multiplier", "absolute"] = Field(
        "multiplier", description="layer_lr values: multipliers of optim.lr, or learning rates themselves.")
    unlisted: Literal["train", "freeze"] = Field(
        "train", description="Parameters no layer_lr prefix names: train at optim.lr, or freeze them (left out of the "
                             "optimizer, as the guide's per-layer groups leave out fc and the stem's BN).")
    # airbench's bias_scaler
    bn_bias_lr_mult: FiniteFloat = Field(
        1.0, gt=0, le=1000, description="LR multiplier for BatchNorm and bias parameters (airbench94: 64); their weight "
                                        "decay is divided by it, so the decay per step stays the same.")

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
        "auto", description="Mixed precision. CUDA: auto = bf16 where supported, else fp16 with GradScaler. "
                            "CPU: bf16 autocast when asked for by name; auto and fp16 train in fp32."
    )
    channels_last: bool = Field(True, description="channels_last memory format on CUDA (on the CPU too with channels_last_cpu).")
    channels_last_cpu: bool = Field(
        False, description="Also channels_last on the CPU (about 1.3x faster there, bench/channels_last_cpu.py; off by "
                           "default: PyTorch's CPU kernels crashed on some odd shapes in tests/faults/test_hostile_spec.py).")
    compile: bool = Field(False, description="torch.compile the model.")
    grad_clip: FiniteFloat = Field(0.0, ge=0, description="Clip the global grad norm to this value; 0 is off.")
    label_smoothing: FiniteFloat = Field(0.0, ge=0, lt=1, description="Cross-entropy label smoothing.")
    label_smoothing_form: Literal["torch", "guide"] = Field(
        "torch", description="torch: every class gets smoothing/K (PyTorch's); guide: the true class 1 - smoothing, "
                             "every other smoothing/(K-1) (the guide's LabelSmoothingLoss).")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed for weights, data order and augmentation (the data itself: data.seed).")
    threads: int = Field(0, ge=0, le=512, description="CPU threads for torch; 0 keeps torch's default.")
    checkpoint_every: int = Field(1, ge=1, le=MAX_EPOCHS, description="Write the 'last' checkpoint every this many epochs.")
    sync_bn: bool = Field(
        False, description="Under several processes (--nproc-per-node/--nnodes > 1): SyncBatchNorm (CUDA only)."
    )
    # airbench's lookahead (engine/train/lookahead.py)
    lookahead_every: int = Field(
        0, ge=0, le=MAX_STEPS, description="Lookahead: every this many steps the weights and BN statistics move to an "
                                           "EMA of themselves, and the run ends on the EMA (airbench94: 5); 0 is off.")
    lookahead_decay: FiniteFloat = Field(
        0.95, ge=0, lt=1, description="Lookahead's per-step decay: each update uses decay**every * progress**3.")


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
    # 'airbench' is its weighted views
    tta_views: list[Literal["identity", "flip", "translate", "airbench"]] = Field(
        default_factory=lambda: ["identity", "flip"], max_length=8,
        description="Deterministic TTA views; 'airbench': its six weighted views (identity and flip at 1/4 each, both "
                    "shifted 1 px along each diagonal at 1/8 each), counted as one view.")
    tta_translate: int = Field(2, ge=1, le=8, description="Pixels for the 'translate' views (four directions).")
    tta_random_views: int = Field(0, ge=0, le=64, description="Extra randomly augmented TTA views (seeded).")
    tta_combine: Literal["logits", "probs"] = Field("logits", description="Average TTA views' logits or probabilities.")
    tta_recipe: Literal["views", "guide"] = Field(
        "views", description="views: the tta_* settings above; guide: the guide's tta_predict, 5 randomly augmented "
                             "views (the training augmentation), mean of the logits (the tta_* settings are not read).")
    calibrate: bool = Field(False, description="Fit a temperature on the validation split at the end of training.")
    calibrate_method: Literal["log_t", "guide"] = Field(
        "log_t", description="log_t: LBFGS on log T from T = 1 with a strong Wolfe line search (converges on over- and "
                             "under-confident logits); guide: the guide's calibrate_model, LBFGS lr 0.01 on T from 1.5, "
                             "50 steps, which can diverge on under-confident logits (label smoothing makes them): a "
                             "non-positive T, or one worse than none, is an error and never applied.")
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
