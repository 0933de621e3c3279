"""A sweep's journal file (Optuna's JournalStorage), and what to say when it is damaged.

Optuna replays the journal line by line and tolerates only a torn last line (a write cut short); a
damaged line anywhere else (garbage, random bytes, a record it cannot replay) raises a decoding error
from deep inside Optuna that names no file. Here that becomes one line naming the file, the first bad
line and what to do; the trials' runs are untouched by it (the table and report read them).
"""

from __future__ import annotations

import json
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from ..contracts import UsageError

MAX_SCAN = 256 * 1024 * 1024  # a larger journal is not scanned for its bad line (the message says less)


class Journal(JournalStorage):
    """A journal storage that knows its file (for messages about it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        super().__init__(JournalFileBackend(str(self.path)))


def open_journal(path: Path, name: str) -> Journal:
    """The journal at `path`; UsageError (one line, naming the file) if Optuna cannot replay it."""
    try:
        return Journal(path)
    except Exception as exc:  # any damage: not JSON, not text, a record Optuna cannot replay
        raise UsageError(damage(path, name, exc)) from None


def first_bad_line(path: Path) -> tuple[int, str] | None:
    """(line number, why) of the first line that is not a journal record; a torn last line (a write
    cut short, which Optuna skips) does not count."""
    if path.stat().st_size > MAX_SCAN:
        return None
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # lines[-1]: what follows the last newline
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            return number, "bytes that are not text"
        except json.JSONDecodeError as exc:
            return number, f"not JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(record, dict) or "op_code" not in record:
            return number, "not an Optuna journal record"
    return None


def damage(path: Path, name: str, exc: BaseException) -> str:
    """One line: which file, where it is damaged, what to do."""
    bad = first_bad_line(path) if path.is_file() else None
    where = f"{path}:{bad[0]}" if bad else str(path)
    what = f"line {bad[0]} is {bad[1]}" if bad else f"Optuna cannot replay it: {type(exc).__name__}: {exc}"
    fix = ("delete that line if it was added by mistake, or restore the file from a backup" if bad
           else "restore the file from a backup")
    return (f"{where}: the sweep journal of {name!r} is damaged ({what}); {fix}. The trials' runs are intact: "
            f"`cockpit sweep report {name}` reads them without the journal")


def is_damage(exc: BaseException) -> bool:
    """Whether an error raised while Optuna replays a journal means a damaged file."""
    return isinstance(exc, (ValueError, KeyError, TypeError))  # JSONDecodeError and UnicodeDecodeError are ValueErrors
