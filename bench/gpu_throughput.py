"""bench/gpu.py's throughput part: sgd_cosine (ResNet-18, the guide's augmentation) images/s through the
engine vs the same model, AMP and optimizer fed by a torchvision DataLoader over PIL images with the
guide's exact Compose; and that DataLoader alone, to show which side limits."""

from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F

from bench.gpu_report import Budget, Report, quiet, sync
from cockpit.core.presets import find_preset
from engine.augment import torchvision_guide_transform
from engine.models import build_model
from engine.optim import build_optimizer, build_scheduler
from engine.runtime.device import autocast_for, resolve_amp
from engine.spec import RunSpec, load_spec
from engine.train import Trainer


class PILDataset(torch.utils.data.Dataset):
    """The same uint8 images as PIL images, labels alongside: what a torchvision pipeline reads."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        from PIL import Image

        arr = x.permute(0, 2, 3, 1).contiguous().numpy()
        self.images = [Image.fromarray(a) for a in arr]
        self.labels = y.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def time_loop(step: Callable[[], None], warmup: int, steps: int, cap: float, device: torch.device) -> tuple[int, float]:
    """(steps timed, seconds): `warmup` untimed steps, then up to `steps` steps or `cap` seconds."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    while n < steps and time.perf_counter() - t0 < cap:
        step()
        n += 1
    sync(device)
    return n, time.perf_counter() - t0


def engine_side(report: Report, spec: RunSpec, cfg, cap: float, label: str):
    """Device-resident data, batched guide augmentation, default instruments, the read every N steps."""
    tr = Trainer(spec, None, log=quiet)
    every, stream = spec.monitor.every, tr.train_loader.forever()

    def engine_step() -> None:
        tr.train_step(*next(stream))
        if tr.step % every == 0:
            tr.flush_window()

    n, secs = time_loop(engine_step, cfg.tput_warmup, cfg.tput_steps, cap, tr.device)
    ips = n * spec.train.batch_size / secs
    report.row(f"throughput engine: sgd_cosine {label}, guide augmentation on the device, default instruments",
               f"{ips:,.0f} images/s ({n} steps in {secs:.1f} s)", number=ips, unit="images/s")
    return ips, tr.data, tr.device


def loader_side(report: Report, data, b: int, cfg, cap: float, dev: torch.device):
    """The torchvision DataLoader (PIL images, the guide's Compose per image, every core), timed alone."""
    workers = cfg.workers
    t0 = time.perf_counter()
    ds = PILDataset(data.train_x, data.train_y, torchvision_guide_transform(data.mean, data.std, size=data.train_x.shape[-1]))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=b, shuffle=True, drop_last=True, num_workers=workers, pin_memory=dev.type == "cuda",
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
    build_s = time.perf_counter() - t0

    def batches():
        while True:
            yield from loader

    it = batches()
    n, secs = time_loop(lambda: next(it), cfg.tput_warmup, cfg.tput_steps, cap, torch.device("cpu"))
    ips = n * b / secs
    report.row(f"throughput torchvision DataLoader alone: guide Compose per PIL image, {workers} workers",
               f"{ips:,.0f} images/s ({n} batches in {secs:.1f} s; dataset built in {build_s:.1f} s)",
               number=ips, unit="images/s")
    return loader, it


def torchvision_side(report: Report, spec: RunSpec, data, loader, it, cfg, cap: float, dev: torch.device, label: str) -> float:
    """The same model, AMP, channels_last, optimizer and schedule, fed by the DataLoader."""
    torch.manual_seed(spec.train.seed)
    model = build_model(spec.model, data.num_classes).to(dev)
    amp_dtype, scaler_on = resolve_amp(spec.train.amp, dev)
    channels_last = spec.train.channels_last and dev.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, spec)
    sched = build_scheduler(opt, spec, len(loader))
    scaler = torch.amp.GradScaler(dev.type, enabled=scaler_on)

    def tv_step() -> None:
        x, y = next(it)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(dev, amp_dtype):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=spec.train.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()

    n, secs = time_loop(tv_step, cfg.tput_warmup, cfg.tput_steps, cap, dev)
    ips = n * spec.train.batch_size / secs
    report.row(f"throughput torchvision: same {label}, AMP and optimizer, DataLoader {cfg.workers} workers, pinned",
               f"{ips:,.0f} images/s ({n} steps in {secs:.1f} s)", number=ips, unit="images/s")
    return ips


def part_throughput(report: Report, cfg, budget: Budget) -> None:
    spec = load_spec(find_preset("sgd_cosine"), cfg.data_sets + cfg.tput_sets)
    cap = max(min(cfg.tput_cap, (budget.left() - cfg.reserve_after_tput) / 3), 1.0)
    label = f"{spec.model.name}, batch {spec.train.batch_size}"
    ips_engine, data, dev = engine_side(report, spec, cfg, cap, label)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    loader, it = loader_side(report, data, spec.train.batch_size, cfg, cap, dev)
    ips_tv = torchvision_side(report, spec, data, loader, it, cfg, cap, dev, label)
    report.row("throughput engine / torchvision", f"{ips_engine / ips_tv:.2f}x", number=ips_engine / ips_tv, unit="x")
    del loader, it  # ends the persistent workers
