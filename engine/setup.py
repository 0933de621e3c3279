"""Everything a run is made of, built from its spec: `build(spec, dist) -> Components`.

The training loop and every pass start here, so a pass needs no trainer: the same data (split and
normalization), model, optimizer, schedule and AMP settings as the run it works on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch

from .augment import Augmenter, normalization
from .contracts import InferenceInfo, RuntimeInfo
from .data import Dataset, DeviceLoader, Progress, load_dataset
from .evaluate import EvalResult, evaluate
from .models import build_model
from .optim import build_optimizer, build_scheduler, freeze_unlisted
from .init_from_data import init_from_data, training_augment
from .runtime.device import resolve_amp
from .data.sharded import ShardedLoader
from .runtime.distributed import DistContext, convert_sync_bn, device_for, rank_seed, wrap_model
from .spec import RunSpec

Log = Callable[[str], None]


@dataclass
class Components:
    """A run's parts. `model` is the plain module (checkpoints and evaluation use it); `ddp` wraps
    it under torchrun, and `eager` is the one the step calls (hooks can watch it)."""

    spec: RunSpec
    dist: DistContext
    device: torch.device
    amp_dtype: torch.dtype | None
    use_scaler: bool
    channels_last: bool
    data: Dataset
    train_loader: DeviceLoader
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    augment: Augmenter
    model: torch.nn.Module
    ddp: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler

    @property
    def eager(self) -> torch.nn.Module:
        return self.ddp if self.ddp is not None else self.model

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def prepare(self, xb: torch.Tensor, train: bool = True) -> torch.Tensor:
        """A uint8 batch as the model takes it: augmented (or only normalized), in the memory format."""
        x = self.augment.train(xb) if train else self.augment.eval(xb)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def inference_info(self) -> InferenceInfo:
        """What predict and export need to use this model without the dataset (meta `inference`)."""
        c, h, w = self.data.image_shape
        a = self.spec.augment
        mean, std = normalization(a, self.data.mean, self.data.std) if a.normalize else ((0.0,) * c, (1.0,) * c)
        return InferenceInfo(classes=list(self.data.classes), mean=list(mean), std=list(std), channels=c, height=h,
                             width=w, channel_order="RGB" if c == 3 else "L", test_images=int(self.test_y.numel()))

    def runtime_info(self) -> RuntimeInfo:
        """What actually runs (meta `runtime`): the spec's `auto` and CPU fallbacks resolved."""
        precision = ("fp32" if self.amp_dtype is None else "bf16 autocast" if self.amp_dtype == torch.bfloat16
                     else "fp16 autocast + GradScaler")  # fp16 always scales (runtime.device.resolve_amp)
        on_cuda = self.device.type == "cuda"  # CUDA and cuDNN as used: a CPU run names neither
        cudnn = torch.backends.cudnn.version() if on_cuda else None
        return RuntimeInfo(device=str(self.device), precision=precision,
                           compile="torch.compile (mode default)" if self.spec.train.compile else "off",
                           memory_format="channels_last" if self.channels_last else "contiguous",
                           torch=torch.__version__, cuda=torch.version.cuda if on_cuda else None,
                           cudnn=str(cudnn) if cudnn else None)

    def evaluate(self, model: torch.nn.Module | None = None, split: str = "test") -> EvalResult:
        """Loss and accuracy of `model` (default: the run's) on the test or validation split."""
        x, y = (self.test_x, self.test_y) if split == "test" else (self.val_x, self.val_y)
        return evaluate(model or self.model, x, y, self.spec.train.eval_batch_size, self.augment.eval,
                        self.amp_dtype, self.channels_last)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _quiet(_msg: str) -> None:
    pass


def build(spec: RunSpec, dist: DistContext | None = None, *, sync_bn: bool = False, log: Log = _quiet,
          on_progress: Progress | None = None) -> Components:
    """Seed, load the data onto the device, build the model (wrapped for DDP under torchrun), its
    optimizer, schedule and scaler. The order of the random draws is part of the contract: a run
    built twice from one spec starts from the same weights. `on_progress(desc, done, total)`: the
    data loading's progress (the worker shows it as its loading phase)."""
    dist = dist or DistContext()
    t = spec.train
    if t.threads:
        torch.set_num_threads(t.threads)
    device = device_for(t.device, dist)
    amp_dtype, use_scaler = resolve_amp(t.amp, device)
    if device.type == "cuda":  # fixed shapes, so cuDNN's autotuner pays; each run's own peak memory
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    seed_everything(t.seed)

    def progress(desc: str, done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(desc, done, total)
        if done == total or done % max(total // 10, 1) == 0:
            log(f"{desc}: {done}/{total}")

    d = load_dataset(spec.data, spec.data.seed, progress)  # the data's own seed: init seeds share it
    if dist.active:  # t.batch_size is the global batch; each rank takes its slice of every batch
        loader: DeviceLoader = ShardedLoader(d.train_x, d.train_y, t.batch_size, device, seed=t.seed,
                                             rank=dist.rank, world_size=dist.world_size)
    else:
        loader = DeviceLoader(d.train_x, d.train_y, t.batch_size, device, shuffle=True,
                              drop_last=d.train_x.shape[0] >= t.batch_size, seed=t.seed)
    channels_last = t.channels_last and (device.type == "cuda" or t.channels_last_cpu)
    model = build_model(spec.model, d.num_classes).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    freeze_unlisted(model, spec.optim)  # before DDP wraps it: DDP only reduces what trains
    augment = Augmenter(training_augment(spec.augment), *normalization(spec.augment, d.mean, d.std))
    init_from_data(model, loader, augment, spec)  # whitening stem from the data, alternating flip
    ddp = None
    if dist.active:
        if sync_bn or t.sync_bn:
            model = convert_sync_bn(model, device)
        torch.manual_seed(rank_seed(t.seed, dist.rank))  # same weights everywhere, own augmentation stream
        ddp = wrap_model(model, device)
    optimizer = build_optimizer(model, spec)
    return Components(
        spec=spec, dist=dist, device=device, amp_dtype=amp_dtype, use_scaler=use_scaler, channels_last=channels_last,
        data=d, train_loader=loader, test_x=d.test_x.to(device), test_y=d.test_y.to(device),
        val_x=d.val_x.to(device), val_y=d.val_y.to(device), augment=augment,
        model=model, ddp=ddp, optimizer=optimizer, scheduler=build_scheduler(optimizer, spec, len(loader)),
        scaler=torch.amp.GradScaler(device.type, enabled=use_scaler))
