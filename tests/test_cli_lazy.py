"""`cockpit` alone opens the TUI without importing every command's module; every command is still
listed by `cockpit --help` and runs as before."""

from __future__ import annotations

import subprocess
import sys

from cockpit.cli.lazy import COMMAND_MODULES

from .conftest import ROOT, cockpit


def test_the_cli_imports_no_command_module_until_one_is_used():
    code = ("import sys, cockpit.cli; "
            "print(','.join(sorted(m for m in sys.modules if m.startswith(('cockpit.cli.', 'cockpit.report', 'optuna')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    loaded = set(out.strip().split(","))
    heavy = {f"cockpit.cli.{m}" for m in COMMAND_MODULES.values()} | {"cockpit.report", "optuna"}
    assert not loaded & heavy, f"imported at start-up: {sorted(loaded & heavy)}"


def test_help_lists_every_command_and_a_command_runs():
    res = cockpit("--help")
    assert res.returncode == 0, res.stderr
    listed = res.stdout.split("Commands:")[1]
    for name, module in COMMAND_MODULES.items():
        if (ROOT / "cockpit" / "cli" / f"{module}.py").is_file():
            assert f"  {name} " in listed, name
    assert cockpit("spec", "check", "quickstart").returncode == 0
    res = cockpit("no-such-command")
    assert res.returncode == 2 and "No such command" in res.stderr


def test_the_cli_runs_without_a_click_of_its_own():
    """Typer >= 0.2x vendors click, so a plain `pip install` has no `click` package: the CLI must
    not import it (the test extras pull it in, which hid a ModuleNotFoundError from fresh installs)."""
    code = ("import sys; sys.modules['click'] = None; "  # `import click` now raises ImportError
            "sys.argv = ['cockpit', '--help']; from cockpit.cli import run_main; run_main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "run" in r.stdout and "Traceback" not in r.stderr, r.stderr
