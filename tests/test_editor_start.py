"""The editor's cached start (issue #17, a fast `cockpit`): what pydantic derived for a preset is read back
as it was, a change to what it was derived from is a miss, a damaged or unwritable cache never stops the
editor, a cache entry that lies is corrected by the models, and in a real terminal the warm editor is on
screen before pydantic is imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cockpit.core import editor_start
from cockpit.core.editor_start import cache_dir, derive, load_start, save_start, start_key

from .conftest import ROOT


def test_a_cached_start_reads_back_as_it_was_derived(tmp_path):
    start, spec = derive("sgd_cosine")
    assert start.label == "sgd_cosine" and not start.errors and not start.problem
    assert start.data["optim"]["name"] == "sgd" and start.data["train"]["epochs"] == spec.train.epochs
    assert load_start("sgd_cosine") is None, "nothing cached yet"
    save_start("sgd_cosine", start)
    assert load_start("sgd_cosine") == start
    assert load_start("quickstart") is None, "another preset is another entry"


def test_a_changed_preset_or_source_is_another_key(tmp_path, monkeypatch):
    preset = tmp_path / "mine.toml"
    preset.write_text('name = "mine"\n[train]\nepochs = 3\n')
    first = start_key(str(preset))
    assert start_key(str(preset)) == first, "the key is the same for the same bytes"
    save_start(str(preset), derive(str(preset))[0])
    preset.write_text('name = "mine"\n[train]\nepochs = 4\n')
    assert start_key(str(preset)) != first and load_start(str(preset)) is None, "an edited preset is a miss"

    source = tmp_path / "sections.py"  # stands for engine/spec/sections.py: a new field, a new default
    source.write_text("A = 1\n")
    monkeypatch.setattr(editor_start, "SOURCES", (*editor_start.SOURCES, source))
    before = start_key(str(preset))
    source.write_text("A = 2\n")
    assert start_key(str(preset)) != before


def test_a_damaged_entry_is_a_miss_and_an_unwritable_cache_is_skipped(tmp_path):
    save_start(None, derive(None)[0])
    entry = cache_dir() / f"{start_key(None)}.json"
    for damage in ("{not json", json.dumps({"label": "x"}), json.dumps([1, 2]), ""):
        entry.write_text(damage)
        assert load_start(None) is None, damage
    entry.unlink()
    cache_dir().chmod(0o500)
    try:
        save_start(None, derive(None)[0])  # no error: it is only a cache
        if os.geteuid() != 0:  # root writes anyway
            assert load_start(None) is None
    finally:
        cache_dir().chmod(0o700)


def test_an_entry_that_parses_but_is_no_editor_is_a_miss():
    save_start(None, derive(None)[0])
    entry = cache_dir() / f"{start_key(None)}.json"
    good = json.loads(entry.read_text())
    for spoil in (lambda r: r.update(sections=[]), lambda r: r["first_nodes"][0].update(kind="choice", choices=[]),
                  lambda r: r["top_fields"][0].update(kind="slider")):
        raw = json.loads(json.dumps(good))
        spoil(raw)
        entry.write_text(json.dumps(raw))
        assert load_start(None) is None


def test_the_cache_keeps_its_newest_entries_and_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setattr(editor_start, "KEEP", 3)
    start = derive(None)[0]
    for i in range(5):
        preset = tmp_path / f"p{i}.toml"
        preset.write_text(f'name = "p{i}"\n')
        save_start(str(preset), start)
        os.utime(cache_dir() / f"{start_key(str(preset))}.json", (1000 + i, 1000 + i))
    kept = sorted(p.name for p in cache_dir().glob("*.json"))
    assert len(kept) == 3 and load_start(str(tmp_path / "p4.toml")) == start
    assert load_start(str(tmp_path / "p0.toml")) is None, "the oldest went"

    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "training-cockpit" / "editor"


@pytest.fixture
def warm_cache():
    save_start(None, derive(None)[0])


async def test_the_warm_editor_loads_the_models_after_painting_and_can_edit(runs_dir, warm_cache):
    from textual.widgets import Input

    from cockpit.tui.app import CockpitApp

    app = CockpitApp(runs_dir=runs_dir)
    assert app.editor.start_cached and app.editor._spec is None, "the start came from the cache"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.editor
        assert editor._spec is not None, "the models load once the editor is drawn"
        assert editor.valid and "✓ valid · 0 changes vs quickstart" in str(editor.query_one("#spec-status").render())
        await editor.show_section("optim")
        await pilot.pause()
        lr = editor.row("optim.lr")
        assert isinstance(lr.control, Input)
        lr.control.value = "-1"
        await pilot.pause()
        assert not editor.valid and "greater than 0" in str(lr.query_one(".field-error").render())


async def test_a_cache_entry_that_lies_is_corrected_by_the_models(runs_dir, warm_cache):
    """Values, fields and tabs: the entry is checked whole against the models once they load, and replaced."""
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.widgets.field_row import FieldRow

    entry = cache_dir() / f"{start_key(None)}.json"
    raw = json.loads(entry.read_text())
    real_val_size = raw["data"]["data"]["val_size"]
    raw["data"]["data"]["val_size"] = real_val_size + 7
    raw["sections"] = raw["sections"][:1]  # one tab
    raw["top_fields"] = []  # no `name` field
    entry.write_text(json.dumps(raw))
    app = CockpitApp(runs_dir=runs_dir)
    assert app.editor.data["data"]["val_size"] == real_val_size + 7, "painted from the (lying) cache"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.editor
        assert editor.data["data"]["val_size"] == real_val_size
        assert editor.row("data.val_size").control.value == str(real_val_size)
        assert "name" in {r.path for r in editor.query(FieldRow)}
        assert len(editor.query("TabPane")) == len(derive(None)[0].sections) > 1
        assert editor.valid and "0 changes vs quickstart" in str(editor.query_one("#spec-status").render())
    assert load_start(None) == derive(None)[0], "the entry was replaced"


# in a real terminal: when pydantic is first imported, the main thread stops (this hook waits there) and
# reads the screen. Only a frame written before that import can be on it.
AT_PYDANTIC = """
import subprocess, sys, time
session, out = sys.argv[1], sys.argv[2]

class AtPydantic:
    done = False

    def find_spec(self, name, path=None, target=None):
        if name.startswith("pydantic.") and not AtPydantic.done:  # an import (finding the package is not)
            AtPydantic.done = True
            screen, deadline = "", time.monotonic() + 3
            while time.monotonic() < deadline and not ("✓ valid" in screen and "^r Launch" in screen):
                time.sleep(0.05)
                screen = subprocess.run([*TMUX, "capture-pane", "-p", "-t", session], capture_output=True,
                                        text=True).stdout
            open(out, "w").write(screen)
        return None

sys.meta_path.insert(0, AtPydantic())
sys.argv = ["cockpit"]
from cockpit.cli import run_main
run_main()
"""


def _screen_at_pydantic(tmux: list[str], tmp_path: Path, runs_dir: Path, n: int, then=lambda: True) -> str:
    """Start bare `cockpit` in tmux at 80x24; the screen when it first imports pydantic. The session is
    ended once `then()` holds."""
    session, out, script = f"warm{n}", tmp_path / f"screen{n}.txt", tmp_path / "at_pydantic.py"
    script.write_text(AT_PYDANTIC.replace("TMUX", repr(tmux)))
    cmd = (f"env COCKPIT_RUNS={runs_dir} XDG_CACHE_HOME={os.environ['XDG_CACHE_HOME']} PYTHONPATH={ROOT} "
           f"TERM=xterm-256color {sys.executable} {script} {session} {out}")
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", str(tmp_path), cmd],
                   check=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not out.exists():
            time.sleep(0.1)
        while time.monotonic() < deadline and not then():
            time.sleep(0.1)
        time.sleep(0.2)  # the hook writes the file whole before it returns
        return out.read_text() if out.exists() else ""
    finally:
        subprocess.run([*tmux, "kill-session", "-t", session], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_in_a_real_terminal_the_warm_editor_is_on_screen_before_pydantic_loads(tmp_path, runs_dir):
    # a tmux server of the test's own, kept up between the two starts by an idle session
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    subprocess.run([*tmux, "new-session", "-d", "-s", "idle", "sleep 600"], check=True)
    try:
        cold = _screen_at_pydantic(tmux, tmp_path, runs_dir, 1, then=lambda: load_start(None) is not None)
        assert "✓ valid" not in cold, "the first start derives its screen from the models: nothing is drawn yet"
        assert load_start(None) is not None, "...and caches it"
        warm = _screen_at_pydantic(tmux, tmp_path, runs_dir, 2)
        assert "✓ valid · 0 changes vs quickstart" in warm and "^r Launch" in warm, warm
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
