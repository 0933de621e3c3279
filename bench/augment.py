"""Benchmark: the guide's augmentation pipeline, batched on the device vs torchvision per image.

    .venv/bin/python bench/augment.py [--n N] [--device cpu|cuda] [--images DIR_OR_TAR] [--kornia]
                                      [--batch B] [--threads T] [--workers W] [--default-malloc]

Both sides run the same pipeline (engine.augment.GUIDE_PIPELINE) over the same images, in this process:

* torchvision: the exact per-image Compose over PIL images, through a DataLoader with num_workers = all
  cores and batch 256 (persistent workers: one warm-up epoch, then 3 timed epochs);
* batched: engine.augment.Augmenter(guide_spec()) on uint8 batches already on the device (one warm-up pass,
  then timed passes over all N images).

Printed: images/s of each (best pass, and the mean of passes) and the ratio; on CPU also each side's CPU time
per image on one thread (steady even when other processes share the machine); then the cost of each op of
the batched pipeline alone (CUDA: wall time; CPU: CPU time on one thread), optionally next to kornia's.

Images are random uint8 32x32 RGB, or the first N JPEG/PNG images (resized to 32x32 if needed) found in
--images, a folder or a .tar/.tar.gz archive (e.g. ../shared/data/cifar10-jpg.tar.gz).
By default glibc is told to keep freed memory (see keep_freed_memory); --default-malloc turns that off.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.augment import Augmenter, guide_spec, torchvision_guide_transform  # noqa: E402
from engine.spec import AugmentSpec  # noqa: E402

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def keep_freed_memory() -> bool:
    """Stop glibc from handing freed memory back to the OS after every op (Linux/glibc only).

    On CPU each op's output is a fresh multi-MB tensor; with glibc's default thresholds these are mmapped or
    trimmed back to the OS when freed, so every op page-faults its output in anew: ~6,900 minor faults and
    about half of the CPU time per 256-image batch on the dev VM. Keeping freed memory in the heap (the same as
    MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment) removes that. DataLoader workers fork
    after this call and inherit it, so both sides of the comparison run with it.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30)
        return bool(ok and libc.mallopt(m_top_pad, 64 << 20))
    except (OSError, AttributeError):
        return False


def load_images(n: int, source: str | None, size: int = 32) -> np.ndarray:
    """[N, size, size, 3] uint8: random, or the first N image files in a folder or a .tar/.tar.gz archive."""
    if not source:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    import io
    import tarfile

    from PIL import Image

    suffixes = (".jpg", ".jpeg", ".png")
    out = []

    def add(fp) -> None:
        img = Image.open(fp).convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        out.append(np.asarray(img))

    path = Path(source)
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar:
                if len(out) >= n:
                    break
                if member.isfile() and member.name.lower().endswith(suffixes):
                    add(io.BytesIO(tar.extractfile(member).read()))
    else:
        for f in sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)[:n]:
            add(f)
    if not out:
        raise SystemExit(f"no .jpg/.jpeg/.png images in {source}")
    return np.stack(out)


class PILDataset(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, transform):
        from PIL import Image

        self.images = [Image.fromarray(a) for a in images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(self.images[i])


def bench_torchvision(images: np.ndarray, workers: int, batch: int = 256, passes: int = 3) -> tuple[float, float]:
    """(best, mean) images/s over `passes` timed epochs, after one warm-up epoch (worker start-up)."""
    ds = PILDataset(images, torchvision_guide_transform(CIFAR10_MEAN, CIFAR10_STD, size=images.shape[1]))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, num_workers=workers, persistent_workers=workers > 0, shuffle=False
    )
    for _ in loader:
        pass
    rates = []
    for _ in range(passes):
        t0 = time.perf_counter()
        count = sum(b.shape[0] for b in loader)
        rates.append(count / (time.perf_counter() - t0))
    return max(rates), sum(rates) / len(rates)


def cpu_time_per_image(aug: Augmenter, images: np.ndarray, batch: int, rounds: int = 7) -> tuple[float, float]:
    """(batched, torchvision) CPU seconds per image, both in this process on one thread, interleaved.

    Thread CPU time leaves out the time other processes take the core, so on a shared, busy machine it measures
    the work better than wall-clock images/s does. Median over `rounds` rounds of one batch each.
    """
    import statistics

    from PIL import Image

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tf = torchvision_guide_transform(CIFAR10_MEAN, CIFAR10_STD, size=images.shape[1])
    pil = [Image.fromarray(a) for a in images[:batch]]
    x = torch.from_numpy(images[:batch]).permute(0, 3, 1, 2).contiguous()
    ours, theirs = [], []
    for i in range(rounds + 1):
        t0 = time.thread_time()
        aug.train(x)
        t1 = time.thread_time()
        torch.stack([tf(im) for im in pil])  # the DataLoader's default collate also stacks
        t2 = time.thread_time()
        if i:  # the first round warms up
            ours.append((t1 - t0) / len(pil))
            theirs.append((t2 - t1) / len(pil))
    torch.set_num_threads(threads)
    return statistics.median(ours), statistics.median(theirs)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batched(fn, x: torch.Tensor, batch: int, min_seconds: float = 1.0, min_passes: int = 3) -> tuple[float, float]:
    """(best, mean) images/s of fn over x in batches: one warm-up pass, then whole passes (at least
    `min_passes`, and until `min_seconds`). The best pass is the figure least disturbed by other load."""
    n = x.shape[0]
    chunks = [x[i : i + batch] for i in range(0, n, batch)]
    for c in chunks:
        fn(c)
    _sync(x.device)
    rates, start = [], time.perf_counter()
    while len(rates) < min_passes or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        for c in chunks:
            fn(c)
        _sync(x.device)
        rates.append(n / (time.perf_counter() - t0))
    return max(rates), sum(rates) / len(rates)


_OFF = dict(flip=0.0, normalize=False)


def single_op_specs(full: AugmentSpec) -> dict[str, AugmentSpec]:
    """Each op of `full` alone (everything else off, normalize too)."""
    specs = {"to_float (base)": AugmentSpec(**_OFF)}
    if full.resized_crop.enabled:
        specs["resized_crop"] = AugmentSpec(**_OFF, resized_crop=full.resized_crop)
    if full.translate:
        specs["translate"] = AugmentSpec(**_OFF, translate=full.translate)
    if full.flip:
        specs["flip"] = AugmentSpec(flip=full.flip, normalize=False)
    if full.color_jitter.p:
        specs["color_jitter"] = AugmentSpec(**_OFF, color_jitter=full.color_jitter)
    if full.grayscale:
        specs["grayscale"] = AugmentSpec(**_OFF, grayscale=full.grayscale)
    if full.rotation:
        specs["rotation"] = AugmentSpec(**_OFF, rotation=full.rotation)
    if full.normalize:
        specs["normalize"] = AugmentSpec(flip=0.0, normalize=True)
    if full.erasing.p:
        specs["erasing"] = AugmentSpec(**_OFF, erasing=full.erasing)
    if full.cutout:
        specs["cutout"] = AugmentSpec(**_OFF, cutout=full.cutout)
    return specs


def kornia_ops(full: AugmentSpec, size: int) -> dict:
    """kornia.augmentation's version of each op (float [0, 1] input), for the comparison column."""
    import kornia.augmentation as K

    cj = full.color_jitter
    return {
        "resized_crop": K.RandomResizedCrop((size, size), scale=full.resized_crop.scale, ratio=full.resized_crop.ratio),
        "flip": K.RandomHorizontalFlip(p=full.flip),
        "color_jitter": K.ColorJitter(cj.brightness, cj.contrast, cj.saturation, cj.hue, p=cj.p),
        "grayscale": K.RandomGrayscale(p=full.grayscale),
        "rotation": K.RandomRotation(full.rotation, resample="nearest", p=1.0),
        "normalize": K.Normalize(torch.tensor(CIFAR10_MEAN), torch.tensor(CIFAR10_STD)),
        "erasing": K.RandomErasing(p=full.erasing.p, scale=full.erasing.scale, ratio=full.erasing.ratio),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="number of images")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256, help="batch size of the batched pipeline")
    ap.add_argument("--images", default="", help="folder or .tar.gz of CIFAR-10 JPEG/PNG files (default: random images)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="DataLoader workers (default: all cores)")
    ap.add_argument("--kornia", action="store_true", help="also time kornia.augmentation's version of each op")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for the batched side (default: torch's, all cores)")
    ap.add_argument("--skip-torchvision", action="store_true")
    ap.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc thresholds alone (see keep_freed_memory)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = "default" if args.default_malloc else ("freed memory kept" if keep_freed_memory() else "default (mallopt failed)")

    device = torch.device(args.device)
    images = load_images(args.n, args.images or None)
    n, size = images.shape[0], images.shape[1]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n} images {size}x{size} ({args.images or 'random'}); torch {torch.__version__}; "
          f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; "
          f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, load average {load:.1f}, malloc: {malloc}")

    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
    spec = guide_spec()
    aug = Augmenter(spec, CIFAR10_MEAN, CIFAR10_STD)
    print("images/s, best pass (mean of passes):")
    batched, batched_mean = time_batched(aug.train, x, args.batch)
    print(f"  batched {aug!r}, batch {args.batch} on {device}: {batched:10,.0f} ({batched_mean:,.0f})")
    if not args.skip_torchvision:
        tv, tv_mean = bench_torchvision(images, args.workers)
        print(f"  torchvision per-image PIL Compose, DataLoader workers={args.workers}, batch 256: {tv:10,.0f} ({tv_mean:,.0f})")
        print(f"  ratio batched / torchvision: {batched / tv:.1f}x best, {batched_mean / tv_mean:.1f}x mean")
    if device.type == "cpu":
        ours, theirs = cpu_time_per_image(aug, images, args.batch)
        print(f"CPU time per image, one thread each, in process: batched {ours * 1e6:.0f} us, "
              f"torchvision {theirs * 1e6:.0f} us, ratio {theirs / ours:.1f}x")

    clock = "CPU time, 1 thread" if device.type == "cpu" else "wall time"
    print(f"\nper-op cost of the batched pipeline (each op alone, batch {args.batch}, on {device}, {clock}, median):")
    kops = kornia_ops(spec, size) if args.kornia else {}
    header = f"{'op':<16} {'images/s':>12} {'us/batch':>10} {'+us over base':>14}"
    print(header + (f" {'kornia us/batch':>16} {'kornia/ours':>12}" if kops else ""))
    # kornia runs on float input; ours includes the uint8 -> float base, so kornia/ours is conservative
    xb = x[: args.batch]
    xf = xb.float().div_(255)
    rows = [(name, Augmenter(s, CIFAR10_MEAN, CIFAR10_STD)) for name, s in single_op_specs(spec).items()]
    base_us = None
    for name, a in rows + [("full pipeline", aug)]:
        us = op_cost_us(a.train, xb)
        base_us = us if base_us is None else base_us
        line = f"{name:<16} {args.batch / us * 1e6:12,.0f} {us:10.0f} {us - base_us:14.0f}"
        if name in kops:
            kus = op_cost_us(kops[name].to(device), xf)
            line += f" {kus:16.0f} {kus / us:11.1f}x"
        print(line)


def op_cost_us(fn, xb: torch.Tensor, reps: int = 15) -> float:
    """Median microseconds of fn(xb): CUDA wall time, or on CPU the thread CPU time with torch on 1 thread
    (steady under other load; the images/s column is then per core)."""
    import statistics

    on_cpu = xb.device.type == "cpu"
    threads = torch.get_num_threads()
    if on_cpu:
        torch.set_num_threads(1)
    clock = time.thread_time if on_cpu else time.perf_counter
    for _ in range(3):
        fn(xb)
    times = []
    for _ in range(reps):
        _sync(xb.device)
        t0 = clock()
        fn(xb)
        _sync(xb.device)
        times.append(clock() - t0)
    torch.set_num_threads(threads)
    return statistics.median(times) * 1e6

if __name__ == "__main__":
    main()
