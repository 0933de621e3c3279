"""Odd things a user can type at the CLI: names too long for the filesystem and
an LR range that is not finite answer exit 2 with one message, and create nothing."""

from __future__ import annotations

import pytest

from ..conftest import cockpit

LONG_NAME = "a" * 300


@pytest.mark.parametrize("command", ["report", "attach", "resume", "stop", "calibrate", "compare"])
def test_a_300_character_run_name_is_no_run(runs_dir, command):
    args = [command, LONG_NAME] + ([LONG_NAME] if command == "compare" else [])
    res = cockpit(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "(300 characters)" in res.stderr and res.stderr.count("\n") <= 2


@pytest.mark.parametrize("command", [["run"], ["spec", "check"], ["lr-find"], ["--preset"]])
def test_a_300_character_preset_name_exits_2_and_creates_nothing(runs_dir, command):
    res = cockpit(*command, LONG_NAME)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "File name too long" in res.stderr
    assert not runs_dir.exists()


@pytest.mark.parametrize("bounds", [["--end-lr", "inf"], ["--end-lr", "nan"], ["--start-lr", "inf"],
                                    ["--start-lr", "-inf"], ["--end-lr", "1e400"], ["--start-lr", "0"]])
def test_lr_find_refuses_a_range_that_is_not_finite_and_leaves_no_run(runs_dir, bounds):
    res = cockpit("lr-find", *bounds)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "finite" in res.stderr
    assert not runs_dir.exists(), "nothing left behind"
