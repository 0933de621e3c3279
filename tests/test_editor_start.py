"""The editor's first screen is the preset as it is now: derived from the spec's models at every start,
never from a cache that could be stale or planted, and nothing is written to the user's cache dir."""

from __future__ import annotations

import os
from pathlib import Path

from cockpit.core.editor_start import derive, initial_spec
from cockpit.tui.app import CockpitApp

from .test_tui import tiny_preset


async def test_the_editor_opens_on_the_preset_as_it_is_now(runs_dir, tmp_path):
    preset = tiny_preset(tmp_path / "presets", epochs=3)
    first = CockpitApp(runs_dir=runs_dir, preset=str(preset))
    assert first.editor.data["train"]["epochs"] == 3
    async with first.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    tiny_preset(tmp_path / "presets", epochs=5)  # edited between two starts
    second = CockpitApp(runs_dir=runs_dir, preset=str(preset))
    assert second.editor.data["train"]["epochs"] == 5, "the second start shows the edit, from its first frame"
    async with second.run_test(size=(80, 24)) as pilot:
        await second.editor.show_section("train")
        await pilot.pause()
        assert second.editor.row("train.epochs").control.value == "5"
        assert second.editor.valid
    cache = Path(os.environ["XDG_CACHE_HOME"])
    assert not (cache / "training-cockpit").exists(), "the editor caches nothing"


def test_a_missing_or_invalid_preset_opens_the_defaults_and_says_why(tmp_path):
    start, spec = derive(str(tmp_path / "nope.toml"))
    assert start.label == "quickstart" and "no preset" in start.problem and not start.errors
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochs = -1\n")
    spec, label, problem = initial_spec(str(bad))
    assert label == "quickstart" and "train.epochs" in problem and "using the defaults" in problem
