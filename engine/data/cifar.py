"""CIFAR-10/100 through torchvision (its batches in the data root, downloaded when allowed), or an
image-folder copy of it (for example the JPEG copy) where no batches are there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..spec import DataSpec
from .common import DataError, Progress, data_root, report_progress
from .folder import has_folder_tree, load_folder


_CIFAR = {
    "cifar10": ("CIFAR-10", "cifar-10-batches-py", 10),
    "cifar100": ("CIFAR-100", "cifar-100-python", 100),
}


def load_cifar(spec: DataSpec, progress: Progress | None):
    title, batches_dir, n_classes = _CIFAR[spec.source]
    root = data_root(spec)
    have_batches = (root / batches_dir).is_dir()
    if not have_batches and has_folder_tree(root):
        train_x, train_y, test_x, test_y, classes, notes = load_folder(root, progress)
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
    report_progress(progress, f"reading {title}", 0, 2)
    sets = []
    for i, train in enumerate((True, False)):
        try:
            ds = cls(str(root), train=train, download=download)
        except Exception as exc:  # missing, corrupt, or the download failed (offline)
            raise DataError(_cifar_missing_message(title, root, batches_dir, download, spec.download, exc)) from None
        x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
        sets.append((x, y, list(ds.classes)))
        report_progress(progress, f"reading {title}", i + 1, 2)
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
