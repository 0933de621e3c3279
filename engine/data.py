"""Data sources -> uint8 tensors in memory, and a loader that keeps a whole set on the device.

Sources (`DataSpec.source`):

- ``synthetic``: a learnable, seeded set of any size (each class a smooth colour/frequency pattern,
  every image shifted, rescaled and noised on its own), generated vectorized in seconds.
- ``cifar10`` / ``cifar100``: through torchvision (its batches in the data root, downloaded when
  allowed). A root that holds an image-folder tree ``train/<class>/*`` and ``test/<class>/*``
  (for example the CIFAR-10 JPEG copy) is accepted too; the torchvision batches win when both exist.
- ``folder``: ``<root>/train/<class>/<image>`` and ``<root>/test/<class>/<image>``. Every image is
  decoded once with PIL, then cached as one file (``<root>/.cockpit-cache/``, else
  ``~/.cache/cockpit/folder-cache/``), keyed by the folder's path and a fingerprint of the file
  names, sizes and modification times, so later runs start in seconds.

Every problem a user can fix (missing files, corrupt images, mismatched class lists...) raises
`DataError` with one message that says what, where and what to do.
"""

from __future__ import annotations

import hashlib
import io
import math
import multiprocessing
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from engine.contracts import UsageError
from engine.fsutil import write_atomic
from engine.spec import DataSpec

__all__ = [
    "DataError",
    "Dataset",
    "DeviceLoader",
    "load_dataset",
    "data_root",
    "folder_cache_dirs",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGE_EXTENSIONS",
]

Progress = Callable[[str, int, int], None]

# Per-channel statistics of the original training sets, in [0, 1] units.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"})

_CACHE_DIRNAME = ".cockpit-cache"
_CACHE_FORMAT = 1
_PROGRESS_EVERY = 256  # images per progress callback while decoding
_FAST_JPEG_MIN = 1024  # decode JPEGs through torchvision from this many files on
_PARALLEL_MIN = 4096  # decode on several workers from this many files on


class DataError(UsageError):
    """A data problem the user can fix; the message says what, where and what to do."""


# ------------------------------------------------------------------------------------ dataset


@dataclass
class Dataset:
    """A whole data set in memory as uint8 tensors [N, C, H, W] (CPU) and int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    source: str = ""
    root: str = ""  # where it was read from ("" for synthetic)
    notes: list[str] = field(default_factory=list)  # e.g. "loaded from cache ..."

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def summary(self) -> str:
        c, h, w = self.image_shape
        return (
            f"{self.name}: {len(self.train_x):,} train / {len(self.val_x):,} val / {len(self.test_x):,} test, "
            f"{self.num_classes} classes, {c}x{h}x{w}"
        )


def data_root(spec: DataSpec) -> Path:
    """The data folder: spec.root, else $COCKPIT_DATA, else ~/.cache/cockpit/data."""
    raw = spec.root or os.environ.get("COCKPIT_DATA", "") or "~/.cache/cockpit/data"
    return Path(raw).expanduser()


def load_dataset(spec: DataSpec, seed: int, progress: Progress | None = None) -> Dataset:
    """Load the source named by `spec`, carve the seeded validation split, attach mean/std."""
    if spec.source == "synthetic":
        train_x, train_y, test_x, test_y, classes = _synthetic(spec, seed, progress)
        name, root, mean_std, notes = "synthetic", "", None, []
    elif spec.source in ("cifar10", "cifar100"):
        train_x, train_y, test_x, test_y, classes, name, root, notes = _cifar(spec, progress)
        mean_std = (CIFAR10_MEAN, CIFAR10_STD) if spec.source == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    elif spec.source == "folder":
        root_p = data_root(spec)
        train_x, train_y, test_x, test_y, classes, notes = _load_folder(root_p, progress)
        name, root, mean_std = f"folder:{root_p.name or root_p}", str(root_p), None
    else:  # pragma: no cover - DataSpec validation rules this out
        raise DataError(f"data.source: unknown source {spec.source!r}")

    train_x, train_y, val_x, val_y = _split_val(train_x, train_y, spec.val_size, seed)
    mean, std = mean_std if mean_std is not None else channel_stats(train_x)
    return Dataset(
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        classes=list(classes),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        name=name,
        source=spec.source,
        root=root,
        notes=notes,
    )


def _split_val(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int):
    n = len(x)
    if val_size == 0:
        return x, y, x[:0].clone(), y[:0].clone()
    if val_size >= n:
        raise DataError(
            f"data.val_size is {val_size:,} but the training set has only {n:,} images: "
            f"set data.val_size below {n:,} (0 turns the validation split off)"
        )
    g = torch.Generator().manual_seed(_mix(seed, 0x7A1))
    perm = torch.randperm(n, generator=g)
    val_idx = perm[:val_size].sort().values
    train_idx = perm[val_size:].sort().values
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def channel_stats(x: torch.Tensor, max_images: int = 10_000, chunk: int = 2048) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images [N, C, H, W] in [0, 1] units.

    Exact up to `max_images` images; beyond that, from an evenly strided subset of about that many
    (an estimate well within 1e-2 of the exact value, at a bounded cost).
    """
    if len(x) == 0:
        raise DataError("cannot compute mean/std of an empty training set")
    if len(x) > max_images:
        x = x[:: math.ceil(len(x) / max_images)]
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        b = x[i : i + chunk].to(torch.float32).transpose(0, 1).reshape(c, -1)
        s += b.sum(1, dtype=torch.float64)
        s2 += torch.einsum("cn,cn->c", b, b).double()
    count = x.numel() / c
    mean = s / count / 255
    var = (s2 / count / 255**2 - mean.square()).clamp_min(0)
    std = var.sqrt().clamp_min(1e-3)  # a constant channel must not blow up normalization
    return tuple(mean.tolist()), tuple(std.tolist())


def _mix(*parts: int) -> int:
    """A 63-bit seed mixed from integers (splitmix64 style), so nearby seeds give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = h * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


def _report(progress: Progress | None, desc: str, done: int, total: int) -> None:
    if progress is not None:
        progress(desc, done, total)


# ---------------------------------------------------------------------------------- synthetic


_SYN_NOISE = 0.3  # half-width of the uniform pixel noise, [0, 1] units
_SYN_BRIGHTNESS = 0.1  # std of the per-image, per-channel brightness shift


def _synthetic(spec: DataSpec, seed: int, progress: Progress | None):
    k, s = spec.synthetic_classes, spec.image_size
    g = torch.Generator().manual_seed(_mix(seed, 0x5EED))
    # Each class: a base colour, a colour direction for its wave, a 2-D frequency and a phase.
    params = {
        "base": torch.rand(k, 3, generator=g) * 0.5 + 0.25,
        "dir": torch.nn.functional.normalize(torch.randn(k, 3, generator=g), dim=1) * 0.22,
        "freq": (torch.rand(k, generator=g) * 2.5 + 0.75),  # cycles per image
        "angle": torch.rand(k, generator=g) * math.pi,
        "phase": torch.rand(k, generator=g) * 2 * math.pi,
    }
    width = len(str(k - 1))
    classes = [f"class{i:0{width}d}" for i in range(k)]
    train_x, train_y = _synthetic_split(params, spec.synthetic_train, s, _mix(seed, 1), progress, "generating synthetic train")
    test_x, test_y = _synthetic_split(params, spec.synthetic_test, s, _mix(seed, 2), progress, "generating synthetic test")
    return train_x, train_y, test_x, test_y, classes


def _synthetic_split(params: dict[str, torch.Tensor], n: int, s: int, stream: int, progress: Progress | None, desc: str):
    k = len(params["base"])
    g = torch.Generator().manual_seed(stream)
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    # per-image parameters, drawn up front so the result does not depend on the chunking
    shift = (torch.rand(n, 2, generator=g) - 0.5) * (s / 4)  # up to s/8 pixels each way
    contrast = torch.rand(n, generator=g) * 0.8 + 0.6
    brightness = torch.randn(n, 3, generator=g) * _SYN_BRIGHTNESS
    ng = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))

    coords = torch.arange(s, dtype=torch.float32)
    out = torch.empty(n, 3, s, s, dtype=torch.uint8)
    chunk = max(1, (1 << 21) // (s * s))
    _report(progress, desc, 0, n)
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        b = j - i
        lab = y[i:j]
        f = params["freq"][lab] * (2 * math.pi / s)
        fx = (f * torch.cos(params["angle"][lab]))[:, None]
        fy = (f * torch.sin(params["angle"][lab]))[:, None]
        # sin(ax + by + p) = sin(ax) cos(by + p) + cos(ax) sin(by + p): sines of [b, s] only
        ax = fx * (coords - shift[i:j, 0, None])
        by = fy * (coords - shift[i:j, 1, None]) + params["phase"][lab][:, None]
        wave = torch.sin(by)[:, :, None] * torch.cos(ax)[:, None, :]
        wave.addcmul_(torch.cos(by)[:, :, None], torch.sin(ax)[:, None, :])  # [b, s(y), s(x)]
        # everything in 0..255 units; +0.5 so the final truncation rounds
        amp = (contrast[i:j, None] * params["dir"][lab] * 255)[:, :, None, None]  # [b, 3, 1, 1]
        offset = ((params["base"][lab] + brightness[i:j] - _SYN_NOISE) * 255 + 0.5)[:, :, None, None]
        img = torch.addcmul(offset, wave[:, None], amp)  # [b, 3, s, s]
        # uniform pixel noise from raw random bytes (a generator's normal draw is ~5x slower)
        words = torch.empty((b * 3 * s * s + 7) // 8, dtype=torch.int64).random_(-(2**63), 2**63 - 1, generator=ng)
        noise = words.view(torch.uint8)[: b * 3 * s * s].view(b, 3, s, s)
        img.add_(noise, alpha=_SYN_NOISE * 2)
        out[i:j] = img.clamp_(0, 255)  # float -> uint8 truncates toward zero
        _report(progress, desc, j, n)
    return out, y.to(torch.int64)


# -------------------------------------------------------------------------------------- cifar

_CIFAR = {
    "cifar10": ("CIFAR-10", "cifar-10-batches-py", 10),
    "cifar100": ("CIFAR-100", "cifar-100-python", 100),
}


def _has_folder_tree(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def _cifar(spec: DataSpec, progress: Progress | None):
    title, batches_dir, n_classes = _CIFAR[spec.source]
    root = data_root(spec)
    have_batches = (root / batches_dir).is_dir()
    if not have_batches and _has_folder_tree(root):
        train_x, train_y, test_x, test_y, classes, notes = _load_folder(root, progress)
        if len(classes) != n_classes:
            raise DataError(
                f"data.source is {spec.source} but the image-folder tree at {root} has {len(classes)} classes "
                f"({', '.join(classes[:12])}{', ...' if len(classes) > 12 else ''}), not {n_classes}: "
                f"point data.root at a {title} copy, or use data.source = \"folder\" for this tree"
            )
        first = min((root / "train" / classes[0]).iterdir(), default=Path("x"))
        kind = "JPEG copy" if first.suffix.lower() in (".jpg", ".jpeg") else "image folder"
        return train_x, train_y, test_x, test_y, classes, f"{title} ({kind})", str(root), notes

    try:
        from torchvision import datasets
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise DataError(f"{title} needs torchvision, which failed to import ({exc}): install it into this environment") from None
    cls = datasets.CIFAR10 if spec.source == "cifar10" else datasets.CIFAR100
    download = spec.download and not have_batches
    if download:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create the data folder {root} for {title} ({exc.strerror or exc}): set data.root or COCKPIT_DATA to a writable folder") from None
    _report(progress, f"reading {title}", 0, 2)
    sets = []
    for i, train in enumerate((True, False)):
        try:
            ds = cls(str(root), train=train, download=download)
        except Exception as exc:  # missing, corrupt, or the download failed (offline)
            raise DataError(_cifar_missing_message(title, root, batches_dir, download, spec.download, exc)) from None
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
        sets.append((x, y, list(ds.classes)))
        _report(progress, f"reading {title}", i + 1, 2)
    (train_x, train_y, classes), (test_x, test_y, _) = sets
    return train_x, train_y, test_x, test_y, classes, title, str(root), []


def _cifar_missing_message(title: str, root: Path, batches_dir: str, tried: bool, allowed: bool, exc: Exception) -> str:
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if tried:
        head = f"{title} is not in {root} and the download failed ({why})."
    elif (root / batches_dir).exists():
        head = f"{title} in {root / batches_dir} is incomplete or corrupt ({why}); delete that folder to download it again."
    else:
        head = f"{title} is not in {root} and data.download is off."
    return (
        f"{head} Put the extracted {batches_dir}/ folder there, or an image-folder tree "
        f"train/<class>/*.jpg and test/<class>/*.jpg, or point data.root (or COCKPIT_DATA) at the folder that "
        f"holds them" + ("" if allowed else ", or set data.download = true to fetch it") + "."
    )


# ------------------------------------------------------------------------------------- folder


@dataclass
class _Split:
    classes: list[str]
    files: list[list[str]]  # per class, sorted file names
    entries: list[tuple[str, int, int]]  # (relative path, size, mtime_ns) for the fingerprint

    @property
    def count(self) -> int:
        return sum(len(f) for f in self.files)


def _scan_split(root: Path, split: str) -> _Split:
    base = root / split
    try:
        class_dirs = sorted(e.name for e in os.scandir(base) if not e.name.startswith(".") and e.is_dir())
    except OSError as exc:
        raise DataError(f"cannot read {base} ({exc.strerror or exc})") from None
    files: list[list[str]] = []
    entries: list[tuple[str, int, int]] = []
    for c in class_dirs:
        names = []
        try:
            with os.scandir(base / c) as it:
                for e in it:
                    if e.name.startswith(".") or os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
                        continue
                    if not e.is_file():
                        continue
                    st = e.stat()
                    names.append(e.name)
                    entries.append((f"{split}/{c}/{e.name}", st.st_size, st.st_mtime_ns))
        except OSError as exc:
            raise DataError(f"cannot read {base / c} ({exc.strerror or exc})") from None
        names.sort()
        files.append(names)
    entries.sort()
    return _Split(class_dirs, files, entries)


def _check_tree(root: Path) -> tuple[_Split, _Split]:
    if not root.exists():
        raise DataError(
            f"image folder {root} does not exist: create it with train/<class>/<image> and test/<class>/<image>, "
            f"or point data.root (or COCKPIT_DATA) at the folder that has them"
        )
    if not root.is_dir():
        raise DataError(f"image folder {root} is a file, not a folder: point data.root at the folder that holds train/ and test/")
    missing = [s for s in ("train", "test") if not (root / s).is_dir()]
    if missing:
        raise DataError(
            f"image folder {root} has no {' and no '.join(s + '/' for s in missing)} folder: expected "
            f"{root}/train/<class>/<image> and {root}/test/<class>/<image>"
        )
    train, test = _scan_split(root, "train"), _scan_split(root, "test")
    for split, sp in (("train", train), ("test", test)):
        if not sp.classes:
            raise DataError(f"{root / split} has no class folders: put each class's images in {root / split}/<class>/")
        if sp.count == 0:
            raise DataError(
                f"{root / split} has no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} files in "
                f"{len(sp.classes)} class folders): put images in {root / split}/<class>/"
            )
    if train.classes != test.classes:
        only_train = sorted(set(train.classes) - set(test.classes))
        only_test = sorted(set(test.classes) - set(train.classes))
        parts = []
        if only_train:
            parts.append(f"only in train/: {', '.join(only_train)}")
        if only_test:
            parts.append(f"only in test/: {', '.join(only_test)}")
        raise DataError(f"image folder {root}: train/ and test/ have different class folders ({'; '.join(parts)}): give both the same classes")
    empty = [c for c, f in zip(train.classes, train.files) if not f]
    if empty:
        raise DataError(f"{root / 'train'}: class folder(s) with no images: {', '.join(empty)}: add images or remove the folder(s)")
    return train, test


def _fingerprint(root: Path, train: _Split, test: _Split) -> str:
    h = hashlib.sha256(f"cockpit-folder-cache v{_CACHE_FORMAT}\n".encode())
    for rel, size, mtime in train.entries + test.entries:
        h.update(f"{rel}\t{size}\t{mtime}\n".encode("utf-8", "surrogateescape"))
    h.update(("classes:" + "\x00".join(train.classes)).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _home_cache_base() -> Path:
    return Path("~/.cache/cockpit/folder-cache").expanduser()


def folder_cache_dirs(root: Path) -> list[Path]:
    """Where the decoded-image cache of an image folder may live: in the folder, else under ~/.cache."""
    resolved = Path(root).expanduser().resolve()
    key = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return [resolved / _CACHE_DIRNAME, _home_cache_base() / key]


def _cache_name(fp: str) -> str:
    return f"folder-{fp[:24]}.pt"


def _read_cache(root: Path, fp: str):
    for d in folder_cache_dirs(root):
        path = d / _cache_name(fp)
        if not path.is_file():
            continue
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # truncated, foreign or corrupt: decode again and overwrite
            continue
        if not isinstance(blob, dict) or blob.get("fingerprint") != fp or blob.get("format") != _CACHE_FORMAT:
            continue
        return blob, path
    return None, None


def _write_cache(root: Path, fp: str, blob: dict) -> Path | None:
    """Atomically write the cache (engine.fsutil) into the first writable place."""
    for d in folder_cache_dirs(root):
        final = d / _cache_name(fp)
        try:
            d.mkdir(parents=True, exist_ok=True)
            write_atomic(final, lambda f: torch.save(blob, f))
        except Exception:  # disk full (torch.save raises RuntimeError), permissions...: no cache, no failure
            continue
        for old in d.glob("folder-*.pt"):  # caches of earlier versions of the tree
            if old.name != final.name:
                try:
                    old.unlink()
                except OSError:
                    pass
        return final
    return None


def _load_folder(root: Path, progress: Progress | None):
    train, test = _check_tree(root)
    fp = _fingerprint(root, train, test)
    blob, path = _read_cache(root, fp)
    if blob is not None:
        _report(progress, "loaded cached images", 1, 1)
        note = f"decoded images loaded from cache {path}"
        return blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], list(blob["classes"]), [note]

    first = root / "train" / train.classes[0] / train.files[0][0]
    h, w = _image_size(first)
    arrays = {}
    for split, sp in (("train", train), ("test", test)):
        paths, labels = [], []
        for ci, names in enumerate(sp.files):
            d = root / split / sp.classes[ci]
            paths += [str(d / n) for n in names]
            labels += [ci] * len(names)
        x = _decode_files(paths, h, w, root, progress, f"decoding {split}/")
        arrays[split] = (torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels, dtype=torch.int64))
    (train_x, train_y), (test_x, test_y) = arrays["train"], arrays["test"]
    blob = {
        "format": _CACHE_FORMAT,
        "fingerprint": fp,
        "root": str(root.resolve()),
        "classes": list(train.classes),
        "train_x": train_x,
        "train_y": train_y,
        "test_x": test_x,
        "test_y": test_y,
    }
    written = _write_cache(root, fp, blob)
    notes = [f"decoded {len(train_x) + len(test_x):,} images; cached in {written}" if written else "decoded images; no writable cache folder"]
    return train_x, train_y, test_x, test_y, list(train.classes), notes


def _image_size(path: Path) -> tuple[int, int]:
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
            im.load()
    except Exception as exc:
        raise DataError(f"cannot read image {path} ({_short(exc)}): replace or delete the file") from None
    return h, w


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _decode_plan(n: int) -> tuple[str, int]:
    """(how, workers) for decoding n files: "serial", "threads" or "processes".

    Decoding a 32x32 image is ~60-200 us of mostly GIL-holding work, so threads barely help;
    forked processes scale with the cores. $COCKPIT_DECODE_WORKERS (a count, 1 = serial) and
    $COCKPIT_DECODE_MODE (threads|processes) override the choice.
    """
    env = os.environ.get("COCKPIT_DECODE_WORKERS", "")
    workers = int(env) if env.isdigit() and int(env) > 0 else min(8, _cpu_count())
    if workers <= 1 or (not env and n < _PARALLEL_MIN):
        return "serial", 1
    mode = os.environ.get("COCKPIT_DECODE_MODE", "")
    if mode not in ("threads", "processes"):
        mode = "processes" if _can_fork() else "threads"
    if mode == "processes" and not _can_fork():
        mode = "threads"
    return mode, workers


def _can_fork() -> bool:
    # fork is safe for children that only decode (no CUDA, no torch thread pools); macOS and
    # Windows would need spawn, which re-imports torch in every child, so they use threads
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _jpeg_batch_decoder():
    """torchvision's batched libjpeg-turbo decode (pixel-identical to PIL's, ~2.5x faster on
    small images), or None where torchvision is unavailable."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except Exception:
        return None

    def decode(blobs: list[bytes]) -> list[torch.Tensor]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "buffer is not writable": it is only read
            tensors = [torch.frombuffer(b, dtype=torch.uint8) for b in blobs]
            return decode_jpeg(tensors, mode=ImageReadMode.RGB)

    return decode


_JPEG_DECODE = None  # set in the parent before forking, so children inherit it


def _decode_chunk(paths: list[str], h: int, w: int, use_jpeg: bool) -> tuple[np.ndarray, dict[int, str]]:
    """Decode files into [n, h, w, 3] uint8; errors maps chunk index -> "size WxH" | "error: why".

    Stops at the first bad file. JPEGs go through torchvision's batched decoder when `use_jpeg`;
    anything else, and a chunk that decoder rejects, through PIL (which also words the error).
    """
    from PIL import Image

    out = np.empty((len(paths), h, w, 3), dtype=np.uint8)
    errors: dict[int, str] = {}
    blobs: list[bytes] = []
    for i, p in enumerate(paths):
        try:
            with open(p, "rb") as f:
                blobs.append(f.read())
        except OSError as exc:
            errors[i] = f"error: {exc.strerror or exc}"
            return out, errors
    done: set[int] = set()
    decoder = _JPEG_DECODE if use_jpeg else None
    if decoder is not None:
        jpeg = [k for k, b in enumerate(blobs) if b[:3] == b"\xff\xd8\xff"]
        if jpeg:
            try:
                decoded = decoder([blobs[k] for k in jpeg])
                if all(tuple(t.shape) == (3, h, w) for t in decoded):
                    for k, t in zip(jpeg, decoded):
                        out[k] = t.numpy().transpose(1, 2, 0)
                    done = set(jpeg)
            except Exception:
                pass  # PIL below finds and names the bad file
    for k, data in enumerate(blobs):
        if k in done:
            continue
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.size != (w, h):
                    errors[k] = f"size {im.size[0]}x{im.size[1]}"
                    return out, errors
                rgb = im if im.mode == "RGB" else im.convert("RGB")
                out[k] = np.asarray(rgb)
        except Exception as exc:
            errors[k] = f"error: {_short(exc)}"
            return out, errors
    return out, errors


def _decode_child_init() -> None:
    torch.set_num_threads(1)  # as DataLoader workers do: no intra-op pool in a forked child


def _decode_files(paths: list[str], h: int, w: int, root: Path, progress: Progress | None, desc: str) -> np.ndarray:
    """Decode images into one [N, H, W, 3] uint8 array; DataError names a bad file (the first found).

    Chunks of `_PROGRESS_EVERY` files, on forked processes (or threads) when there are many;
    progress is reported from the calling thread as chunks finish.
    """
    global _JPEG_DECODE
    n = len(paths)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    use_jpeg = n >= _FAST_JPEG_MIN  # below that, torchvision's import costs more than it saves
    if use_jpeg and _JPEG_DECODE is None:
        _JPEG_DECODE = _jpeg_batch_decoder()
    chunks = [(lo, min(n, lo + _PROGRESS_EVERY)) for lo in range(0, n, _PROGRESS_EVERY)]
    how, workers = _decode_plan(n)
    errors: dict[int, str] = {}
    done = 0
    _report(progress, desc, 0, n)

    def collect(lo: int, arr: np.ndarray, errs: dict[int, str]) -> None:
        nonlocal done
        if errs:
            errors.update({lo + k: v for k, v in errs.items()})
            return
        out[lo : lo + len(arr)] = arr
        done += len(arr)
        _report(progress, desc, done, n)

    if how == "serial":
        for lo, hi in chunks:
            collect(lo, *_decode_chunk(paths[lo:hi], h, w, use_jpeg))
            if errors:
                break
    else:
        if how == "processes":
            ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_decode_child_init)
        else:
            ex = ThreadPoolExecutor(workers, thread_name_prefix="cockpit-decode")
        try:
            futures = {ex.submit(_decode_chunk, paths[lo:hi], h, w, use_jpeg): lo for lo, hi in chunks}
            for fut in as_completed(futures):
                collect(futures[fut], *fut.result())
                if errors:
                    break
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    if errors:
        i = min(errors)
        msg = errors[i]
        rel = os.path.relpath(paths[i], root)
        if msg.startswith("size"):
            raise DataError(
                f"image {paths[i]} is {msg[5:]} pixels but the first image is {w}x{h}: all images in {root} must "
                f"share one size ({rel}); resize or remove it"
            )
        raise DataError(f"cannot decode image {paths[i]} ({msg[7:]}): replace or delete the file ({rel})")
    return out


# -------------------------------------------------------------------------------- device loader


class DeviceLoader:
    """Batches from tensors that live on the device, moved there once.

    The order of an epoch is a pure function of (seed, epoch): a CPU generator draws the
    permutation and one transfer puts it on the device, so a run resumed at batch `start` sees
    exactly the batches it would have seen. No per-image Python, no host sync per batch.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        device: torch.device | str,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self._n = len(x)
        self._arange: torch.Tensor | None = None

    @property
    def num_samples(self) -> int:
        """Images in the underlying set."""
        return self._n

    @property
    def samples_per_epoch(self) -> int:
        """Images actually yielded per epoch (fewer than num_samples with drop_last)."""
        return len(self) * self.batch_size if self.drop_last else self._n

    def __len__(self) -> int:
        if self.drop_last:
            return self._n // self.batch_size
        return (self._n + self.batch_size - 1) // self.batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        """The epoch's order as dataset indices (on the device); identity when not shuffling."""
        if not self.shuffle:
            if self._arange is None:
                self._arange = torch.arange(self._n, device=self.device)
            return self._arange
        g = torch.Generator().manual_seed(_mix(self.seed, 0xD474, int(epoch)))
        perm = torch.randperm(self._n, generator=g)
        if self.device.type == "cuda":  # pinned + async: no wait for the previous epoch's kernels
            return perm.pin_memory().to(self.device, non_blocking=True)
        return perm.to(self.device)

    def batch_bounds(self, b: int) -> tuple[int, int]:
        """Positions [lo, hi) of batch `b` in the epoch's order (a sharded loader takes its slice)."""
        return b * self.batch_size, min(self._n, (b + 1) * self.batch_size)

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (xb, yb, idx) for the batches of `epoch` from batch number `start` on."""
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        nb = len(self)
        if start >= nb:
            return
        idx = self.permutation(epoch)
        for b in range(start, nb):
            lo, hi = self.batch_bounds(b)
            sl = idx[lo:hi]
            if self.shuffle:
                yield self.x[sl], self.y[sl], sl
            else:  # contiguous views, no gather
                yield self.x[lo:hi], self.y[lo:hi], sl

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return self.epoch_batches(0)

    def forever(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(xb, yb) epoch after epoch without end, for sweeps and benchmarks that count steps."""
        while True:
            for xb, yb, _ in self.epoch_batches(epoch):
                yield xb, yb
            epoch += 1
