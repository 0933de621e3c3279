"""What every data source shares: the user-facing error, the data folder, seeds and progress."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..contracts import UsageError
from ..spec import DataSpec

Progress = Callable[[str, int, int], None]


class DataError(UsageError):
    """A data problem the user can fix; the message says what, where and what to do."""


def data_root(spec: DataSpec) -> Path:
    """The data folder: spec.root, else $COCKPIT_DATA, else ~/.cache/cockpit/data."""
    raw = spec.root or os.environ.get("COCKPIT_DATA", "") or "~/.cache/cockpit/data"
    return Path(raw).expanduser()


def mix_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (splitmix64 style), so nearby seeds give unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
        h = h * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


def report_progress(progress: Progress | None, desc: str, done: int, total: int) -> None:
    if progress is not None:
        progress(desc, done, total)
