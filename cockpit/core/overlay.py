"""Several runs followed at once, for one chart of their curves overlaid: each run read through its
own RunTail (new rows only, so runs still training keep growing), and the spec fields in which the
runs differ, so a legend can say what each run changed."""

from __future__ import annotations

import json
import math
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.store import Run

from .tail import RunTail

IGNORED_FIELDS = ("name",)  # the run id already carries it


@dataclass(frozen=True)
class RunPoll:
    """What one poll of one run found: its state, epoch length and the points read since the last poll."""

    run_id: str
    state: str = ""
    steps_per_epoch: int = 0
    points: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    error: str = ""


class RunsFollower:
    """Polls several runs; `poll()` returns one RunPoll per run, in order. A poll thread and the UI's
    close never touch the stores at once (SQLite connections are not shared between threads)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._tails: dict[Path, RunTail] = {}
        self._unsent: dict[Path, dict[str, list[tuple[int, float]]]] = {p: {} for p in self.paths}
        self._lock = threading.Lock()
        self._closed = False

    def poll(self) -> list[RunPoll]:
        with self._lock:
            if self._closed:
                return [RunPoll(p.name, error="closed") for p in self.paths]
            return [self._poll(path) for path in self.paths]

    def _poll(self, path: Path) -> RunPoll:
        unsent = self._unsent[path]
        try:
            tail = self._tails.get(path)
            if tail is None:
                tail = self._tails[path] = RunTail(Run(path))
            try:
                snap = tail.poll()
            finally:  # points read are kept until a poll hands them over (a failed read loses none)
                for name, pts in tail.fresh.items():
                    unsent.setdefault(name, []).extend(pts)
                tail.fresh = {}
            points = {n: tuple(p for p in pts if math.isfinite(p[1])) for n, pts in unsent.items()}
            unsent.clear()
            return RunPoll(path.name, snap.state, int(snap.meta.get("steps_per_epoch") or 0), points)
        except Exception as exc:  # a run deleted or damaged meanwhile: said in the legend, the others go on
            return RunPoll(path.name, error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Close every store once no poll is in flight (a poll after this reads nothing)."""
        with self._lock:
            self._closed = True
            for tail in self._tails.values():
                tail.run.close()
            self._tails.clear()


def flat_spec(path: Path) -> dict[str, Any]:
    """The run's resolved spec (spec.toml) as {dotted key: value}; {} when it cannot be read."""
    try:
        data = tomllib.loads((Path(path) / "spec.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    out: dict[str, Any] = {}

    def walk(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v
    walk(data, "")
    return out


def differing_fields(specs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per run, {dotted key: value as text} of the spec fields whose values are not the same in every
    run (a field one run lacks counts as different: `-`), in key order."""
    keys = sorted(set().union(*specs)) if specs else []
    differ = [k for k in keys if k not in IGNORED_FIELDS
              and len({json.dumps(s.get(k), sort_keys=True, default=str) for s in specs}) > 1]
    out: list[dict[str, str]] = [{} for _ in specs]
    for k in differ:
        texts = [_text(s.get(k)) for s in specs]
        if len(set(texts)) < len({json.dumps(s.get(k), sort_keys=True, default=str) for s in specs}):
            texts = [_text(s.get(k), exact=True) for s in specs]  # values that differ past 6 digits
        for fields, text in zip(out, texts):
            fields[k] = text
    return out


def _text(value: Any, exact: bool = False) -> str:
    """A spec value as a legend shows it: 0.15 (6 significant digits unless `exact`), true, [1,2], -."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not exact:
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v, exact) for v in value) + "]"
    return str(value)
