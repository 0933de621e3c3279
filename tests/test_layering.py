"""UI and logic stay apart: the engine loads no UI package; the TUI's import loads no torch."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return {m.split(".")[0] for m in out.split()}


def test_engine_loads_no_ui_packages():
    mods = loaded_after("import engine, engine.spec, engine.store, engine.worker, engine.train, engine.evaluate")
    assert "torch" in mods  # the import really happened
    assert not mods & {"textual", "rich", "typer", "cockpit"}


def test_cockpit_cli_and_app_do_not_import_torch():
    mods = loaded_after("import cockpit.cli, cockpit.tui.app, cockpit.cli.live, cockpit.core.tail, cockpit.report")
    assert "textual" in mods
    assert "torch" not in mods
