"""bench/gpu.py's data: torchvision's CIFAR-10 where it can be had, else the JPEG copy, said in a row;
and the same images written in airbench's own format, so its CifarLoader reads exactly what fast94 trains on."""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import torch

from bench.gpu_report import ROOT, Report

BATCHES = "cifar-10-batches-py"  # torchvision's CIFAR-10 folder
JPEG_NOTE = "JPEG copy (quality 75, 4:2:0 chroma): not the original; accuracies run lower than on the original"


def _candidates() -> list[Path]:
    env = os.environ.get("COCKPIT_DATA")
    dirs = [Path(env)] if env else []
    dirs += [Path.home() / ".cache" / "cockpit" / "data", ROOT / ".data", ROOT / "shared" / "data",
             ROOT.parent / "shared" / "data"]
    return dirs


def find_default_data() -> Path | None:
    """torchvision's CIFAR-10 (a folder holding cifar-10-batches-py/, or cifar-10-python.tar.gz) first,
    then the JPEG copy's tarball."""
    for d in _candidates():
        if (d / BATCHES).is_dir():
            return d
        if (d / "cifar-10-python.tar.gz").is_file():
            return d / "cifar-10-python.tar.gz"
    for d in _candidates():
        if (d / "cifar10-jpg.tar.gz").is_file():
            return d / "cifar10-jpg.tar.gz"
    return None


def _unpack(path: Path, tmp: Path) -> Path:
    """A tarball unpacked under tmp; the folder that holds cifar-10-batches-py/ or train/ and test/."""
    if not tarfile.is_tarfile(path):
        raise SystemExit(f"bench/gpu.py: --data {path} is neither a folder nor a tar archive")
    dest = tmp / "cifar10"
    dest.mkdir()
    with tarfile.open(path) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # Python without extraction filters
            tar.extractall(dest)
    for d in [dest, *sorted(dest.rglob("*"))]:
        if d.is_dir() and ((d / BATCHES).is_dir() or ((d / "train").is_dir() and (d / "test").is_dir())):
            return d
    raise SystemExit(f"bench/gpu.py: {path} holds neither {BATCHES}/ nor train/ and test/ folders")


def prepare_data(arg: str | None, smoke: bool, tmp: Path, report: Report) -> tuple[list[str], bool]:
    """Spec overrides for the data, and whether it is real CIFAR-10 (so 94% means something)."""
    if arg is None and smoke:
        return ["data.source=synthetic"], False
    if arg == "synthetic":
        report.row("data", "synthetic (timings only)")
        return ["data.source=synthetic"] + ([] if smoke else ["data.synthetic_train=50000", "data.synthetic_test=10000"]), False
    if arg == "download":
        report.row("data", "CIFAR-10: torchvision's original, downloaded into the default data root if missing")
        return ["data.source=cifar10", "data.download=true"], True
    path = Path(arg).expanduser() if arg else find_default_data()
    if path is None:
        raise SystemExit("bench/gpu.py: no CIFAR-10 data: pass --data DIR (holding cifar-10-batches-py/, or a JPEG "
                         "tree train/ test/), --data cifar-10-python.tar.gz or cifar10-jpg.tar.gz, --data download, "
                         "or --data synthetic for timings only")
    t0 = time.perf_counter()
    if path.is_file():
        root, how = _unpack(path, tmp), f"{path.name} unpacked in {time.perf_counter() - t0:.1f} s"
    elif path.is_dir():
        root, how = path, str(path)
    else:
        raise SystemExit(f"bench/gpu.py: --data {path} does not exist")
    kind = "torchvision's original" if (root / BATCHES).is_dir() else JPEG_NOTE
    report.row("data", f"CIFAR-10, {kind}: {how}")
    return ["data.source=cifar10", f"data.root={root}", "data.download=false"], True


def export_for_airbench(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                        classes: list[str], dest: Path) -> Path:
    """`dest/train.pt` and `dest/test.pt` as airbench's CifarLoader saves them (uint8 NHWC images, labels,
    classes), from the uint8 NCHW tensors fast94 trained on: both read the same images. The training set
    is shuffled (fixed seed) as torchvision's is: airbench whitens from its first 5,000 images, and a
    folder dataset's first 5,000 are one class."""
    dest.mkdir(parents=True, exist_ok=True)
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))
    train_x, train_y = train_x[order], train_y[order]
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        torch.save({"images": x.permute(0, 2, 3, 1).contiguous().cpu(), "labels": y.cpu(), "classes": list(classes)},
                   dest / f"{name}.pt")
    return dest
