"""A damaged sweep journal (a garbage line in the middle, random bytes, a record Optuna cannot
replay) is one line naming the file and the line, exit 2, in every command that opens it; a torn
last line (a write cut short) is Optuna's to skip, and the sweep goes on."""

from __future__ import annotations

import os
import re

import pytest

from cockpit.core.presets import find_preset
from engine.contracts import UsageError
from engine.sweep.config import load_sweep
from engine.sweep.study import Study, open_storage

from .conftest import cockpit
from .sweep_util import write_sweep


def _journal(tmp_path, runs_dir, name="dmg"):
    sweep, presets = load_sweep(write_sweep(tmp_path, name, {"a": 0.1, "b": 0.2}, [0, 1]), find_preset)
    Study.create(sweep, presets, open_storage(None, runs_dir, name))
    path = runs_dir / "sweeps" / name / "journal.log"
    return path, path.read_bytes()


def _damaged(good: bytes) -> dict[str, tuple[bytes, str]]:
    lines = good.split(b"\n")
    return {
        "garbage line": (b"\n".join([*lines[:3], b"garbage{{", *lines[3:]]), ":4: the sweep journal of 'dmg' is "
                         "damaged (line 4 is not JSON"),
        "random bytes": (b"\x9e\xff\x00" + os.urandom(2000) + b"\n" + os.urandom(500), ":1: the sweep journal of 'dmg' "
                         "is damaged (line 1 is bytes that are not text)"),
        "foreign record": (b"\n".join([lines[0], b'{"a": 1}', *lines[1:]]), ":2: the sweep journal of 'dmg' is "
                           "damaged (line 2 is not an Optuna journal record)"),
        "unknown operation": (re.sub(rb'"op_code":\d+', b'"op_code":99', good, count=1),
                              "journal.log: the sweep journal of 'dmg' is damaged (Optuna cannot replay it"),
    }


def test_a_damaged_journal_is_one_usage_error_naming_the_file_and_line(tmp_path, runs_dir):
    path, good = _journal(tmp_path, runs_dir)
    for what, (data, said) in _damaged(good).items():
        path.write_bytes(data)
        with pytest.raises(UsageError) as err:
            Study.load("dmg", open_storage(None, runs_dir, "dmg"))
        message = str(err.value)
        assert message.startswith(str(path)) and said in message, (what, message)
        assert "\n" not in message and "cockpit sweep report dmg" in message, (what, message)
    path.write_bytes(good + b'{"op_code": 4, "torn')  # a torn last line: Optuna skips it
    assert Study.load("dmg", open_storage(None, runs_dir, "dmg")).counts() == {"waiting": 4}


@pytest.mark.slow
def test_status_join_resume_and_run_on_a_damaged_journal_exit_2_with_one_line(tmp_path, runs_dir):
    path, good = _journal(tmp_path, runs_dir)
    cases = list(_damaged(good).values())
    commands = [("status", "dmg"), ("join", "dmg"), ("resume", "dmg"), ("status", "dmg", "--json"),
                ("run", str(tmp_path / "dmg.toml"))]
    for i, command in enumerate(commands):
        data, said = cases[i % len(cases)]
        path.write_bytes(data)
        r = cockpit("sweep", *command)
        assert r.returncode == 2 and r.stdout == "" and said in r.stderr, (command, r.stdout + r.stderr)
        assert r.stderr.count("\n") == 1 and str(path) in r.stderr, r.stderr
    assert [p.name for p in runs_dir.iterdir()] == ["sweeps"] and path.read_bytes() == data  # nothing ran or changed
