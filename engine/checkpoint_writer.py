"""Checkpoints written off the training thread.

`CheckpointWriter.write(state, paths)` copies every tensor of `state` to host memory (the training
thread goes on changing the live ones in place), then a thread of its own serializes, fsyncs and
renames it into each path (engine.checkpoint.save_atomic: a crash mid-write leaves the previous
checkpoint intact). One write at a time: the next write, `wait()` and `close()` first wait for the
one in flight and raise its error (a full disk: CheckpointError), so no failure goes unreported.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt

__all__ = ["CheckpointWriter", "to_host"]


def to_host(obj: Any) -> Any:
    """A copy of `obj` whose tensors are host copies no one else holds (dicts, lists and tuples copied)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_host(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(v) for v in obj)
    return obj


def _write_all(state: dict[str, Any], paths: list[Path]) -> list[Path]:
    for path in paths:
        ckpt.save_atomic(state, path)
    return paths


class CheckpointWriter:
    """One background writer per run; `close()` at the end (it waits and raises the last error)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def write(self, state: dict[str, Any], paths: list[Path]) -> None:
        """Queue `state` for `paths` once the previous write is done (its error is raised here)."""
        self.wait()
        host = to_host(state)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-writer")
        self._pending = self._pool.submit(_write_all, host, list(paths))

    def wait(self) -> list[Path]:
        """Block until the write in flight is on disk; its paths, or its error raised."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else []

    def abandon(self) -> None:
        """`close()` on the way out of a failure: the write in flight completes, its own error is
        dropped so it does not hide the one being raised."""
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
