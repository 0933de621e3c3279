"""`cockpit` opens fast: the spec editor paints without importing the other views, the
run-side libraries (torch, Optuna), the charts or the command-line parser (Typer); those load when
first used. The footer's keys are in the first frame (no second layout of the screen for them)."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT

# the TUI started as bare `cockpit` starts it, headless at 80x24, quit after its first paint: the
# modules it had imported by then
FIRST_PAINT = """
import os, sys
os.environ["COCKPIT_RUNS"] = sys.argv[1]
from cockpit.cli import open_tui

async def painted(pilot):
    await pilot.pause()
    assert pilot.app.screen is pilot.app.editor and len(pilot.app.screen_stack) == 1
    pilot.app.exit()

open_tui(headless=True, size=(80, 24), auto_pilot=painted)
print(",".join(sorted(sys.modules)))
"""

LATER = ("torch", "optuna", "plotext", "textual_plotext", "cockpit.report", "engine.sweep", "cockpit.core.launch",
         "cockpit.core.reading",
         "cockpit.tui.screens.dashboard", "cockpit.tui.screens.runs", "cockpit.tui.screens.sweep",
         "cockpit.tui.screens.dialogs", "cockpit.tui.screens.help", "cockpit.tui.screens.chart",
         "typer", "cockpit.cli.commands")


def test_the_first_paint_imports_only_the_editor(tmp_path):
    res = subprocess.run([sys.executable, "-c", FIRST_PAINT, str(tmp_path / "runs")], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    loaded = set(res.stdout.strip().splitlines()[-1].split(","))
    early = sorted(m for m in loaded if m.startswith(LATER))
    assert not early, f"imported before the editor's first paint: {early}"
    assert "cockpit.tui.screens.editor" in loaded


async def test_views_open_on_first_use_and_an_empty_runs_dir_says_so(tmp_path):
    from textual.widgets import Static

    from cockpit.tui.app import CockpitApp

    app = CockpitApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen_stack == [app.editor] and "✓ valid" in str(app.editor.query_one("#spec-status").render())
        await pilot.press("r")
        await pilot.pause()
        assert app.screen is app.runs
        assert "no runs in" in str(app.runs.query_one("#runs-head", Static).render())
        await pilot.press("e")
        await pilot.pause()
        assert app.screen is app.editor


async def test_the_footer_shows_the_screens_keys_in_its_first_frame(tmp_path, monkeypatch):
    """Footer alone composes empty, waits for the bindings signal and recomposes; ours composes the keys."""
    from cockpit.tui.app import CockpitApp
    from cockpit.tui.widgets.key_footer import KeyFooter

    recomposed: list[KeyFooter] = []
    original = KeyFooter.recompose

    async def counted(self):
        recomposed.append(self)
        await original(self)

    monkeypatch.setattr(KeyFooter, "recompose", counted)
    app = CockpitApp(runs_dir=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        keys = [k.description for k in app.editor.query_one(KeyFooter).query("FooterKey")]
        assert "Launch" in keys and "Quit" in keys, keys
        assert not recomposed, "the footer was laid out again at start"
        await pilot.press("r")  # another view's keys: the footer there shows them too
        await pilot.pause()
        assert "Open" in [k.description for k in app.runs.query_one(KeyFooter).query("FooterKey")]


def test_ctrl_c_while_the_tui_loads_exits_130_without_a_traceback(tmp_path):
    """Bare `cockpit` spends most of its start importing, outside Typer's handling: Ctrl+C there (here
    raised where the app is built) quits like a stopped command."""
    code = ("import sys; sys.argv = ['cockpit']\n"
            "import cockpit.tui.app as A\n"
            "def interrupted(*a, **k): raise KeyboardInterrupt\n"
            "A.CockpitApp.__init__ = interrupted\n"
            "from cockpit.cli import run_main; run_main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "COCKPIT_RUNS": str(tmp_path / "runs")})
    assert res.returncode == 130 and "Traceback" not in res.stderr, res.stderr[-2000:]


def test_the_tui_opens_in_a_working_directory_that_was_deleted(tmp_path):
    """A shell left in a removed directory: the editor opens on the shipped presets (it used to crash on
    ./presets); a save there would say why it fails."""
    gone = tmp_path / "gone"
    gone.mkdir()
    code = "import os, sys\nos.chdir(sys.argv[2]); os.rmdir(sys.argv[2])\n" + FIRST_PAINT
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs"), str(gone)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2000:]
