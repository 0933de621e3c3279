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

import math
from dataclasses import dataclass, field

import torch

from ..spec import DataSpec
from .cifar import load_cifar
from .common import DataError, Progress, data_root, mix_seed
from .folder import IMAGE_EXTENSIONS, folder_cache_dirs, load_folder
from .loader import DeviceLoader
from .synthetic import synthetic

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

# Per-channel statistics of the original training sets, in [0, 1] units.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


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


def load_dataset(spec: DataSpec, seed: int, progress: Progress | None = None) -> Dataset:
    """Load the source named by `spec`, carve the seeded validation split, attach mean/std."""
    if spec.source == "synthetic":
        train_x, train_y, test_x, test_y, classes = synthetic(spec, seed, progress)
        name, root, mean_std, notes = "synthetic", "", None, []
    elif spec.source in ("cifar10", "cifar100"):
        train_x, train_y, test_x, test_y, classes, name, root, notes = load_cifar(spec, progress)
        mean_std = (CIFAR10_MEAN, CIFAR10_STD) if spec.source == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    elif spec.source == "folder":
        root_p = data_root(spec)
        train_x, train_y, test_x, test_y, classes, notes = load_folder(root_p, progress)
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
    g = torch.Generator().manual_seed(mix_seed(seed, 0x7A1))
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
        b = x[i : i + chunk].to(torch.float64).transpose(0, 1).reshape(c, -1)  # float64: the sums stay exact
        s += b.sum(1)
        s2 += torch.einsum("cn,cn->c", b, b)
    count = x.numel() / c
    mean = s / count / 255
    var = (s2 / count / 255**2 - mean.square()).clamp_min(0)
    std = var.sqrt().clamp_min(1e-3)  # a constant channel must not blow up normalization
    return tuple(mean.tolist()), tuple(std.tolist())
