"""Checkpoints: atomic writes (engine.atomic_write: temp file in the same folder, fsync, rename), safe loads.

Loads always use `torch.load(weights_only=True)`: a file carrying arbitrary pickled objects is
refused and none of its code runs. A truncated or corrupt file is reported as corrupt.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .contracts import UsageError
from .atomic_write import clean_temp_files, disk_full, write_atomic

__all__ = ["CheckpointError", "clean_temp_files", "load", "load_latest_good", "path_for", "previous", "save_atomic",
           "weights_digest"]

# Fault injection for tests/faults: "kill-mid-write:N" SIGKILLs this process after the N-th
# checkpoint's bytes are written and before its rename, the worst moment for a crash.
_FAULT = os.environ.get("COCKPIT_FAULT_INJECT", "")
_saves = 0


class CheckpointError(UsageError):
    """A checkpoint that cannot be written or loaded; the message names the file."""


def path_for(checkpoints: Path, kind: str) -> Path:
    """checkpoints/<kind>.pt; CheckpointError for anything but a plain name in the run's own
    checkpoints/ (a path elsewhere would be read, and recorded on this run, as if it were its own)."""
    if not kind or kind in (".", "..") or Path(kind).name != kind or "\\" in kind or "\0" in kind:
        raise CheckpointError(f"checkpoint {kind[:200]!r} is not a checkpoint of this run: name one in {checkpoints} "
                              "(best, last, swa, or a file name there), not a path")
    return Path(checkpoints) / f"{kind}.pt"


def previous(path: Path) -> Path:
    """Where the previous good checkpoint of a kind is kept (last.pt -> last.prev.pt)."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_atomic(obj: dict[str, Any], path: Path, keep_previous: bool = True) -> None:
    """Write obj to path atomically (engine.atomic_write). The old file becomes `<kind>.prev.pt` only once
    the new one is complete, so a good checkpoint always exists."""
    path = Path(path)

    def before_rename() -> None:
        _maybe_fault()
        if keep_previous and path.exists():
            os.replace(path, previous(path))

    try:
        write_atomic(path, lambda f: torch.save(obj, f), before_rename)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
        if disk_full(exc, path.parent):
            raise CheckpointError(f"cannot write checkpoint {path}: the disk is full at {path.parent} "
                                  "(No space left on device)") from None
        if not isinstance(exc, OSError):
            raise
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None


def _maybe_fault() -> None:
    global _saves
    _saves += 1
    if _FAULT.startswith("kill-mid-write:") and _saves == int(_FAULT.split(":")[1]):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refused {path}: it holds objects that are not plain tensors and values ({str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"corrupt checkpoint {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def load_latest_good(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path, list[str]]:
    """The checkpoint at path, else its previous one; returns (state, file used, problems seen)."""
    problems = []
    for candidate in (Path(path), previous(Path(path))):
        try:
            return load(candidate, map_location), candidate, problems
        except CheckpointError as exc:
            problems.append(str(exc))
    raise CheckpointError("; ".join(problems))


def weights_digest(weights: dict[str, torch.Tensor]) -> str:
    """A SHA-256 of a model's weights (a state dict): names, dtypes, shapes and values, independent of
    device and memory format, so the live model and the checkpoint saved from it hash alike. What a
    calibration or a TTA measurement belongs to: a later best.pt has other weights and another digest."""
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
