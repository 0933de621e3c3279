"""The image-folder source: <root>/train/<class>/<image> and <root>/test/<class>/<image>.

Every image is decoded once (PIL, or torchvision's batched JPEG decode for many files, on several
workers), then cached as one file (<root>/.cockpit-cache/, else ~/.cache/cockpit/folder-cache/),
keyed by the folder's path and a fingerprint of the file names, sizes and modification times, so
later runs start in seconds.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic_write import write_atomic
from ..image_file import rgb_image
from .common import DataError, Progress, report_progress

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"})

_CACHE_DIRNAME = ".cockpit-cache"
_CACHE_FORMAT = 1
_PROGRESS_EVERY = 256  # images per progress callback while decoding
_FAST_JPEG_MIN = 1024  # decode JPEGs through torchvision from this many files on
_PARALLEL_MIN = 4096  # decode on several workers from this many files on


def has_folder_tree(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()



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
    """Atomically write the cache (engine.atomic_write) into the first writable place."""
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


def load_folder(root: Path, progress: Progress | None):
    train, test = _check_tree(root)
    fp = _fingerprint(root, train, test)
    blob, path = _read_cache(root, fp)
    if blob is not None:
        report_progress(progress, "loaded cached images", 1, 1)
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
                out[k] = np.asarray(rgb_image(im))  # by value range: a 16-bit PNG is not white
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
    report_progress(progress, desc, 0, n)

    def collect(lo: int, arr: np.ndarray, errs: dict[int, str]) -> None:
        nonlocal done
        if errs:
            errors.update({lo + k: v for k, v in errs.items()})
            return
        out[lo : lo + len(arr)] = arr
        done += len(arr)
        report_progress(progress, desc, done, n)

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
