"""UI and logic stay apart: the engine loads no UI package; the TUI's import loads no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_import_contracts_hold():
    """import-linter's contracts in pyproject: no cycles, the layers (TUI, CLI and reports above the
    core, above the engine), the engine free of the cockpit and of UI packages, the cross-process and
    view modules free of torch, and no view importing the worker."""
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in out.stdout
