"""engine.data: sources, the seeded validation split, the folder cache and the device loader."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import engine.data as data_mod
import engine.data.folder as folder_mod
from engine.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    DataError,
    Dataset,
    DeviceLoader,
    channel_stats,
    data_root,
    folder_cache_dirs,
    load_dataset,
)
from engine.spec import DataSpec

SHARED = Path(__file__).resolve().parents[2] / "shared"
CIFAR_JPG = SHARED / "data" / "cifar10-jpg.tar.gz"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ------------------------------------------------------------------------------------ helpers


def class_colour(ci: int, i: int = 0) -> tuple[int, int, int]:
    return ((40 * ci + 3 * i) % 256, (90 + 25 * ci) % 256, (200 - 17 * ci + i) % 256)


def make_folder_tree(
    root: Path,
    classes: list[str],
    n_per_class: int,
    size: int | tuple[int, int] = 8,
    ext: str = "png",
    splits: tuple[str, ...] = ("train", "test"),
) -> Path:
    """root/<split>/<class>/<i>.<ext>: flat colour images, colour a function of (class index, i)."""
    w, h = (size, size) if isinstance(size, int) else size
    for split in splits:
        for ci, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                Image.new("RGB", (w, h), class_colour(ci, i)).save(d / f"{i:04d}.{ext}")
    return root


def spec(**kw) -> DataSpec:
    base = dict(download=False)
    base.update(kw)
    return DataSpec(**base)


def small_synthetic(**kw) -> DataSpec:
    base = dict(source="synthetic", synthetic_train=400, synthetic_test=100, synthetic_classes=5, image_size=16)
    base.update(kw)
    return DataSpec(**base)


def image_keys(x: torch.Tensor) -> list[bytes]:
    return [hashlib.blake2b(row.numpy().tobytes(), digest_size=16).digest() for row in x]


def assert_no_chain(exc: BaseException) -> None:
    """A DataError reaches the user alone: no 'during handling of the above exception' chain."""
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the real ~/.cache or a real $COCKPIT_DATA."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("COCKPIT_DATA", raising=False)
    monkeypatch.delenv("COCKPIT_DECODE_WORKERS", raising=False)
    monkeypatch.delenv("COCKPIT_DECODE_MODE", raising=False)
    return home


# ---------------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_dtypes_balance():
    ds = load_dataset(small_synthetic(), seed=0)
    assert isinstance(ds, Dataset)
    assert ds.train_x.shape == (400, 3, 16, 16) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (100, 3, 16, 16) and ds.test_x.dtype == torch.uint8
    assert ds.train_y.dtype == torch.int64 and ds.train_y.shape == (400,)
    assert ds.val_x.shape == (0, 3, 16, 16) and ds.val_y.shape == (0,)
    assert ds.num_classes == 5 and len(ds.classes) == 5 and len(set(ds.classes)) == 5
    assert ds.classes == sorted(ds.classes)
    assert torch.bincount(ds.train_y, minlength=5).tolist() == [80] * 5
    assert torch.bincount(ds.test_y, minlength=5).tolist() == [20] * 5
    assert len(ds.mean) == len(ds.std) == 3
    assert all(0 < m < 1 for m in ds.mean) and all(0 < s < 1 for s in ds.std)
    assert ds.name == "synthetic" and ds.train_x.device.type == "cpu"
    assert int(ds.train_x.max()) > 200 and int(ds.train_x.min()) < 60  # uses the range


def test_synthetic_deterministic_per_seed():
    a = load_dataset(small_synthetic(), seed=3)
    b = load_dataset(small_synthetic(), seed=3)
    c = load_dataset(small_synthetic(), seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    assert torch.equal(a.test_x, b.test_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert not torch.equal(a.test_x, c.test_x)
    # the test set does not depend on how many training images were asked for
    d = load_dataset(small_synthetic(synthetic_train=123), seed=3)
    assert torch.equal(a.test_x, d.test_x)


@pytest.fixture
def one_thread():
    """Tiny matmuls: a second intra-op thread only adds spin-waits on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_synthetic_learnable(one_thread):
    ds = load_dataset(small_synthetic(synthetic_train=1000, synthetic_test=500, synthetic_classes=10, image_size=8), seed=1)
    x = ds.train_x.float().flatten(1) / 255
    xt = ds.test_x.float().flatten(1) / 255
    # nearest class mean: ~0.8
    means = torch.stack([x[ds.train_y == c].mean(0) for c in range(10)])
    ncm = (torch.cdist(xt, means).argmin(1) == ds.test_y).float().mean().item()
    assert ncm > 0.5, ncm  # chance is 0.1
    # softmax regression, 100 full-batch gradient steps (plain autograd: torch.optim's first step
    # pays a multi-second import): ~0.85
    mu, sd = x.mean(0), x.std(0) + 1e-3
    xn, xtn = (x - mu) / sd, (xt - mu) / sd
    w = torch.zeros(x.shape[1], 10, requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(xn @ w + b, ds.train_y)
        gw, gb = torch.autograd.grad(loss, (w, b))
        with torch.no_grad():
            w -= 0.5 * gw
            b -= 0.5 * gb
    with torch.no_grad():
        acc = ((xtn @ w + b).argmax(1) == ds.test_y).float().mean().item()
    assert acc > 0.5, acc


def test_synthetic_other_sizes():
    ds = load_dataset(small_synthetic(image_size=40, synthetic_classes=3, synthetic_train=7, synthetic_test=2), seed=0)
    assert ds.train_x.shape == (7, 3, 40, 40) and ds.test_x.shape == (2, 3, 40, 40)
    assert ds.num_classes == 3


def test_mean_std_computed_from_train():
    ds = load_dataset(small_synthetic(val_size=40), seed=0)
    x = ds.train_x.double() / 255
    assert np.allclose(ds.mean, x.mean(dim=(0, 2, 3)).tolist(), atol=1e-6)
    assert np.allclose(ds.std, x.permute(1, 0, 2, 3).reshape(3, -1).std(1, unbiased=False).tolist(), atol=1e-4)
    # strided estimate for big sets stays close to the exact value
    big = torch.randint(0, 256, (3000, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    exact = channel_stats(big)
    m, s = channel_stats(big, max_images=500)
    assert np.allclose(m, exact[0], atol=0.01) and np.allclose(s, exact[1], atol=0.01)
    assert np.allclose(exact[0], 127.5 / 255, atol=0.01)


# --------------------------------------------------------------------------------------- root


def test_data_root_resolution(monkeypatch, tmp_path, _isolated_home):
    assert data_root(spec(root=str(tmp_path / "x"))) == tmp_path / "x"
    monkeypatch.setenv("COCKPIT_DATA", str(tmp_path / "env"))
    assert data_root(spec()) == tmp_path / "env"
    assert data_root(spec(root="~/mine")) == _isolated_home / "mine"
    monkeypatch.delenv("COCKPIT_DATA")
    assert data_root(spec()) == _isolated_home / ".cache" / "cockpit" / "data"


# -------------------------------------------------------------------------------- validation


def test_val_split_sizes_disjoint_seeded():
    full = load_dataset(small_synthetic(), seed=5)
    a = load_dataset(small_synthetic(val_size=60), seed=5)
    assert len(a.val_x) == len(a.val_y) == 60
    assert len(a.train_x) == len(a.train_y) == 340
    assert torch.equal(a.test_x, full.test_x)
    keys_full = image_keys(full.train_x)
    assert len(set(keys_full)) == 400
    kt, kv = image_keys(a.train_x), image_keys(a.val_x)
    assert not set(kt) & set(kv)  # disjoint
    assert sorted(kt + kv) == sorted(keys_full)  # together exactly the original train set
    # labels travel with their images
    label_of = dict(zip(keys_full, full.train_y.tolist()))
    assert [label_of[k] for k in kv] == a.val_y.tolist()
    assert [label_of[k] for k in kt] == a.train_y.tolist()
    # seeded: same seed same split; another split seed gives another split (data fixed by source seed)
    b = load_dataset(small_synthetic(val_size=60), seed=5)
    assert torch.equal(a.val_x, b.val_x)
    x, y, vx, vy = data_mod._split_val(full.train_x, full.train_y, 60, seed=6)
    assert set(image_keys(vx)) != set(kv)


def test_val_size_too_big():
    with pytest.raises(DataError, match="val_size"):
        load_dataset(small_synthetic(val_size=400), seed=0)


# ------------------------------------------------------------------------------------- folder


def test_folder_loads_sorted_with_progress(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["zebra", "apple", "mango"], 4, size=(10, 6))
    (root / "train" / "apple" / "notes.txt").write_text("not an image")  # ignored
    (root / "train" / ".hidden").mkdir()  # ignored
    calls = []
    ds = load_dataset(spec(source="folder", root=str(root)), seed=0, progress=lambda *a: calls.append(a))
    assert ds.classes == ["apple", "mango", "zebra"]
    assert ds.train_x.shape == (12, 3, 6, 10) and ds.train_x.dtype == torch.uint8
    assert ds.test_x.shape == (12, 3, 6, 10)
    assert ds.train_y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # pixel values match the colours written (PNG is lossless); "apple" was written as class index 1
    written = {"zebra": 0, "apple": 1, "mango": 2}
    for row, lab, i in zip(ds.train_x, ds.train_y.tolist(), list(range(4)) * 3):
        assert tuple(row[:, 0, 0].tolist()) == class_colour(written[ds.classes[lab]], i)
    assert calls and all(len(c) == 3 and isinstance(c[0], str) for c in calls)
    assert any(c[0].startswith("decoding train") and c[1] == c[2] == 12 for c in calls)
    assert any(c[0].startswith("decoding test") and c[1] == c[2] == 12 for c in calls)
    assert ds.root == str(root) and "folder" in ds.name
    assert any((root / ".cockpit-cache").glob("folder-*.pt"))


def _forbid_decoding(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(Image, "open", boom)
    monkeypatch.setattr(folder_mod, "_decode_files", boom)


def test_folder_cache_reused_and_invalidated(tmp_path, monkeypatch):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 3)
    first = load_dataset(spec(source="folder", root=str(root)), seed=0)
    with monkeypatch.context() as m:
        _forbid_decoding(m)
        calls = []
        again = load_dataset(spec(source="folder", root=str(root)), seed=0, progress=lambda *a: calls.append(a))
        assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
        assert again.classes == first.classes and calls
    # a changed file invalidates the cache
    f = root / "train" / "b" / "0001.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(f)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    changed = load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert tuple(changed.train_x[4, :, 0, 0].tolist()) == (1, 2, 3)
    assert not torch.equal(changed.train_x, first.train_x)
    # so does a new file; stale cache files are removed
    Image.new("RGB", (8, 8), (9, 9, 9)).save(root / "test" / "a" / "extra.png")
    grown = load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert len(grown.test_x) == 7
    assert len(list((root / ".cockpit-cache").glob("folder-*.pt"))) == 1


def test_folder_cache_falls_back_to_home(tmp_path, monkeypatch, _isolated_home):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 2)
    (root / ".cockpit-cache").write_text("a file where the cache folder would go")  # root cache unusable
    first = load_dataset(spec(source="folder", root=str(root)), seed=0)
    home_dir = folder_cache_dirs(root)[1]
    assert str(home_dir).startswith(str(_isolated_home / ".cache" / "cockpit" / "folder-cache"))
    assert list(home_dir.glob("folder-*.pt"))
    with monkeypatch.context() as m:
        _forbid_decoding(m)
        again = load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert torch.equal(first.train_x, again.train_x)


def test_folder_corrupt_cache_is_rebuilt(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 2)
    first = load_dataset(spec(source="folder", root=str(root)), seed=0)
    (cache,) = (root / ".cockpit-cache").glob("folder-*.pt")
    cache.write_bytes(b"garbage")
    again = load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert torch.equal(first.train_x, again.train_x)
    assert cache.stat().st_size > 100


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_folder_parallel_and_fast_jpeg_match_serial_pil(tmp_path, monkeypatch, mode):
    root = make_folder_tree(tmp_path / "tree", ["a", "b", "c"], 6, size=12, ext="jpg")
    Image.new("L", (12, 12), 77).save(root / "train" / "a" / "gray.jpg")  # grayscale -> RGB
    Image.new("RGB", (12, 12), (5, 6, 7)).save(root / "train" / "b" / "lossless.png")  # not a JPEG
    monkeypatch.setattr(folder_mod, "_FAST_JPEG_MIN", 0)  # torchvision's batched JPEG decode
    monkeypatch.setenv("COCKPIT_DECODE_WORKERS", "2")
    monkeypatch.setenv("COCKPIT_DECODE_MODE", mode)
    monkeypatch.setattr(folder_mod, "_PROGRESS_EVERY", 4)  # several chunks on the pool
    calls = []
    fast = load_dataset(spec(source="folder", root=str(root)), seed=0, progress=lambda *a: calls.append(a))
    assert [c[1] for c in calls if c[0].startswith("decoding train")] == [0, 4, 8, 12, 16, 20]
    shutil.rmtree(root / ".cockpit-cache")
    monkeypatch.setattr(folder_mod, "_FAST_JPEG_MIN", 10**9)  # PIL only
    monkeypatch.setenv("COCKPIT_DECODE_WORKERS", "1")
    slow = load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert fast.train_x.shape == (20, 3, 12, 12)
    assert torch.equal(fast.train_x, slow.train_x) and torch.equal(fast.test_x, slow.test_x)
    assert (fast.train_x[6] == 77).all()  # gray.jpg sorts after the numbered files of class a
    assert tuple(fast.train_x[13, :, 0, 0].tolist()) == (5, 6, 7)  # b/lossless.png: last of b


def test_folder_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist") as ei:
        load_dataset(spec(source="folder", root=str(tmp_path / "nope")), seed=0)
    assert str(tmp_path / "nope") in str(ei.value)
    assert_no_chain(ei.value)


def test_folder_missing_split(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["a"], 1, splits=("train",))
    with pytest.raises(DataError, match="no test/") as ei:
        load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert str(root) in str(ei.value)


def test_folder_empty_split(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 2, splits=("train",))
    (root / "test" / "a").mkdir(parents=True)
    (root / "test" / "b").mkdir(parents=True)
    with pytest.raises(DataError, match="has no images") as ei:
        load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert str(root / "test") in str(ei.value)


@pytest.mark.parametrize("fast,workers", [(False, "1"), (True, "1"), (True, "2")])
def test_folder_corrupt_file_named(tmp_path, monkeypatch, fast, workers):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 3, ext="jpg")
    bad = root / "train" / "b" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    if fast:
        monkeypatch.setattr(folder_mod, "_FAST_JPEG_MIN", 0)
    monkeypatch.setenv("COCKPIT_DECODE_WORKERS", workers)
    monkeypatch.setattr(folder_mod, "_PROGRESS_EVERY", 2)
    with pytest.raises(DataError, match="cannot decode") as ei:
        load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert str(bad) in str(ei.value)
    assert_no_chain(ei.value)
    assert not (root / ".cockpit-cache").exists() or not list((root / ".cockpit-cache").glob("*.pt"))


def test_folder_not_an_image_named(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 2)
    bad = root / "test" / "a" / "zz.png"
    bad.write_text("hello")
    with pytest.raises(DataError, match="cannot decode") as ei:
        load_dataset(spec(source="folder", root=str(root)), seed=0)
    assert str(bad) in str(ei.value)


def test_folder_class_lists_differ(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["cat", "dog", "eel"], 1, splits=("train",))
    make_folder_tree(root, ["cat", "dog", "fox"], 1, splits=("test",))
    with pytest.raises(DataError, match="different class folders") as ei:
        load_dataset(spec(source="folder", root=str(root)), seed=0)
    msg = str(ei.value)
    assert "only in train/: eel" in msg and "only in test/: fox" in msg


def test_folder_mixed_sizes(tmp_path):
    root = make_folder_tree(tmp_path / "tree", ["a", "b"], 2, size=8)
    odd = root / "train" / "b" / "0005.png"
    Image.new("RGB", (9, 7), (0, 0, 0)).save(odd)
    with pytest.raises(DataError, match="share") as ei:
        load_dataset(spec(source="folder", root=str(root)), seed=0)
    msg = str(ei.value)
    assert str(odd) in msg and "9x7" in msg and "8x8" in msg


# -------------------------------------------------------------------------------------- cifar


def test_cifar10_offline_missing_names_root(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DataError) as ei:
        load_dataset(spec(source="cifar10", root=str(root), download=False), seed=0)
    msg = str(ei.value)
    assert str(root) in msg and "cifar-10-batches-py" in msg and "data.download" in msg
    assert_no_chain(ei.value)


def test_cifar_download_failure_is_dataerror(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    def offline(*a, **k):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", offline)
    root = tmp_path / "dl"
    with pytest.raises(DataError, match="download failed") as ei:
        load_dataset(spec(source="cifar100", root=str(root), download=True), seed=0)
    assert str(root) in str(ei.value) and "cifar-100-python" in str(ei.value)


def test_cifar_corrupt_batches_not_redownloaded(tmp_path):
    root = tmp_path / "half"
    (root / "cifar-10-batches-py").mkdir(parents=True)  # say, an interrupted extraction
    with pytest.raises(DataError, match="incomplete or corrupt") as ei:
        load_dataset(spec(source="cifar10", root=str(root), download=True), seed=0)
    assert str(root / "cifar-10-batches-py") in str(ei.value)
    assert_no_chain(ei.value)


def test_cifar10_on_image_folder_tree(tmp_path):
    root = make_folder_tree(tmp_path / "c10", CIFAR10_CLASSES, 2, size=32, ext="jpg")
    ds = load_dataset(spec(source="cifar10", root=str(root), val_size=4), seed=0)
    assert ds.classes == CIFAR10_CLASSES
    assert ds.train_x.shape == (16, 3, 32, 32) and ds.val_x.shape == (4, 3, 32, 32)
    assert ds.test_x.shape == (20, 3, 32, 32)
    assert ds.mean == CIFAR10_MEAN and ds.std == CIFAR10_STD
    assert ds.name == "CIFAR-10 (JPEG copy)" and ds.source == "cifar10"
    # the wrong CIFAR for this tree is a clear error
    with pytest.raises(DataError, match="10 classes"):
        load_dataset(spec(source="cifar100", root=str(root)), seed=0)


def test_cifar_batches_preferred_over_tree(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    root = make_folder_tree(tmp_path / "both", CIFAR10_CLASSES, 1, size=32)
    (root / "cifar-10-batches-py").mkdir()
    seen = []

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            seen.append((root, train, download))
            n = 6 if train else 3
            self.data = np.full((n, 32, 32, 3), 7 if train else 9, dtype=np.uint8)
            self.targets = list(range(n))
            self.classes = CIFAR10_CLASSES

    monkeypatch.setattr(tvd, "CIFAR10", FakeCIFAR10)
    ds = load_dataset(spec(source="cifar10", root=str(root), download=True), seed=0)
    assert seen == [(str(root), True, False), (str(root), False, False)]
    assert ds.train_x.shape == (6, 3, 32, 32) and (ds.train_x == 7).all() and (ds.test_x == 9).all()
    assert ds.train_y.dtype == torch.int64 and ds.name == "CIFAR-10"


# ------------------------------------------------------------------------------ device loader


def _loader_data(n=37):
    x = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 2, 2).contiguous()
    y = torch.arange(n, dtype=torch.int64) * 10
    return x, y


def test_loader_each_index_once_and_consistent():
    x, y = _loader_data()
    dl = DeviceLoader(x, y, batch_size=8, device="cpu", shuffle=True, drop_last=False, seed=1)
    assert len(dl) == 5 and dl.num_samples == 37 and dl.samples_per_epoch == 37
    batches = list(dl.epoch_batches(0))
    assert len(batches) == 5
    idx = torch.cat([b[2] for b in batches])
    assert sorted(idx.tolist()) == list(range(37))
    assert not torch.equal(idx, torch.arange(37))
    for xb, yb, ib in batches:
        assert xb.dtype == torch.uint8 and xb.shape[1:] == (3, 2, 2)
        assert torch.equal(xb[:, 0, 0, 0].long(), ib) and torch.equal(yb, ib * 10)
    assert [len(b[0]) for b in batches] == [8, 8, 8, 8, 5]


def test_loader_orders_pure_function_of_seed_epoch():
    x, y = _loader_data()
    a = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False, seed=1)
    b = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False, seed=1)
    c = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False, seed=2)

    def order(dl, e):
        return torch.cat([i for _, _, i in dl.epoch_batches(e)]).tolist()

    assert order(a, 0) != order(a, 1)
    assert order(a, 3) == order(b, 3)
    list(a.epoch_batches(5))  # consuming other epochs changes nothing
    assert order(a, 1) == order(b, 1)
    assert order(a, 0) != order(c, 0)


def test_loader_resume_mid_epoch():
    x, y = _loader_data()
    dl = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False, seed=4)
    full = list(dl.epoch_batches(2))
    for k in range(len(dl) + 2):
        tail = list(DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False, seed=4).epoch_batches(2, start=k))
        assert len(tail) == max(0, len(full) - k)
        for (xa, ya, ia), (xb, yb, ib) in zip(full[k:], tail):
            assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
    with pytest.raises(ValueError):
        list(dl.epoch_batches(0, start=-1))


def test_loader_drop_last():
    x, y = _loader_data()
    dl = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=True, seed=0)
    assert len(dl) == 4 and dl.samples_per_epoch == 32
    batches = list(dl.epoch_batches(0))
    assert [len(b[0]) for b in batches] == [8] * 4
    assert len(set(torch.cat([b[2] for b in batches]).tolist())) == 32
    small = DeviceLoader(x[:5], y[:5], 8, "cpu", shuffle=True, drop_last=True)
    assert len(small) == 0 and list(small.epoch_batches(0)) == []


def test_loader_eval_order_identity():
    x, y = _loader_data()
    dl = DeviceLoader(x, y, 10, "cpu", shuffle=False, drop_last=False)
    batches = list(dl.epoch_batches(0))
    assert [len(b[0]) for b in batches] == [10, 10, 10, 7]
    assert torch.cat([b[2] for b in batches]).tolist() == list(range(37))
    assert torch.equal(torch.cat([b[0] for b in batches]), x)
    assert torch.equal(torch.cat([b[1] for b in batches]), y)
    assert [b[2].tolist() for b in dl.epoch_batches(3)] == [b[2].tolist() for b in batches]
    assert len(list(dl)) == 4


def test_loader_moves_once(monkeypatch):
    x, y = _loader_data()
    dl = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False)
    assert dl.x.dtype == torch.uint8 and dl.y.dtype == torch.int64
    assert dl.x.device.type == "cpu"
    with pytest.raises(ValueError):
        DeviceLoader(x, y[:3], 8, "cpu", shuffle=True, drop_last=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loader_on_cuda():
    x, y = _loader_data()
    dl = DeviceLoader(x, y, 8, "cuda", shuffle=True, drop_last=False, seed=1)
    cpu = DeviceLoader(x, y, 8, "cpu", shuffle=True, drop_last=False, seed=1)
    assert dl.x.is_cuda and dl.x.dtype == torch.uint8
    for (xa, ya, ia), (xb, yb, ib) in zip(dl.epoch_batches(1), cpu.epoch_batches(1)):
        assert xa.is_cuda and ia.is_cuda
        assert torch.equal(xa.cpu(), xb) and torch.equal(ia.cpu(), ib)


def test_engine_data_does_not_import_ui():
    import ast

    for source in Path(data_mod.__file__).parent.glob("*.py"):
        tree = ast.parse(source.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] in ("textual", "rich", "typer")], source.name


# ------------------------------------------------------------------------- real CIFAR-10 copy


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not CIFAR_JPG.is_file(), reason=f"{CIFAR_JPG} not present")
def test_real_cifar10_jpeg_copy(tmp_path):
    subprocess.run(["tar", "-xzf", str(CIFAR_JPG), "-C", str(tmp_path)], check=True)
    s = spec(source="cifar10", root=str(tmp_path), val_size=5000)
    t0 = time.perf_counter()
    ds = load_dataset(s, seed=0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = load_dataset(s, seed=0)
    cached = time.perf_counter() - t0
    print(f"\nCIFAR-10 JPEG copy: first load (decode) {first:.1f}s, cached load {cached:.1f}s")
    assert ds.classes == CIFAR10_CLASSES
    assert ds.train_x.shape == (45000, 3, 32, 32) and ds.val_x.shape == (5000, 3, 32, 32)
    assert ds.test_x.shape == (10000, 3, 32, 32) and ds.train_x.dtype == torch.uint8
    counts = torch.bincount(torch.cat([ds.train_y, ds.val_y]), minlength=10)
    assert counts.tolist() == [5000] * 10
    assert torch.bincount(ds.test_y, minlength=10).tolist() == [1000] * 10
    assert torch.equal(ds.val_x, again.val_x) and torch.equal(ds.test_x, again.test_x)
    # the JPEG copy's statistics are close to the original's
    m, sd = channel_stats(torch.cat([ds.train_x, ds.val_x]))
    assert np.allclose(m, CIFAR10_MEAN, atol=0.01) and np.allclose(sd, CIFAR10_STD, atol=0.01)
    assert cached < first


def test_forever_walks_epoch_after_epoch_in_their_own_orders():
    x = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1)
    y = torch.arange(20)
    dl = DeviceLoader(x, y, 5, "cpu", shuffle=True, drop_last=True, seed=3)
    it = dl.forever()
    got = [next(it)[1] for _ in range(3 * len(dl))]
    for epoch in range(3):
        seen = torch.cat(got[epoch * len(dl):(epoch + 1) * len(dl)])
        assert sorted(seen.tolist()) == list(range(20)), "each stretch of len(dl) batches is one whole epoch"
        expected = torch.cat([yb for _, yb, _ in dl.epoch_batches(epoch)])
        assert torch.equal(seen, expected), "in that epoch's own order"
