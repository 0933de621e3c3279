"""`cockpit` opens fast (issue #17): the spec editor paints without importing the other views, the
run-side libraries (torch, Optuna) or the charts; those load when first used."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

# the TUI started headless at 80x24, quit after its first paint: the modules it had imported by then
FIRST_PAINT = """
import sys
from cockpit.tui.app import CockpitApp

async def painted(pilot):
    await pilot.pause()
    assert pilot.app.screen is pilot.app.editor and len(pilot.app.screen_stack) == 1
    pilot.app.exit()

CockpitApp(runs_dir=sys.argv[1]).run(headless=True, size=(80, 24), auto_pilot=painted)
print(",".join(sorted(sys.modules)))
"""

LATER = ("torch", "optuna", "plotext", "textual_plotext", "cockpit.report", "engine.sweep", "cockpit.core.launch",
         "cockpit.core.reading",
         "cockpit.tui.screens.dashboard", "cockpit.tui.screens.runs", "cockpit.tui.screens.sweep",
         "cockpit.tui.screens.dialogs", "cockpit.tui.screens.help", "cockpit.tui.screens.chart")


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
