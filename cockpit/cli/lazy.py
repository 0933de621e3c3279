"""The `cockpit` group with its subcommands imported when they are used, not at start-up.

`cockpit` with no command opens the TUI: it should not pay for importing every command's module
(reports, sweeps on Optuna, passes...). Each command is named here with the module that defines it
(in that module's `COMMANDS`, or its `app` for a group such as `spec`); `cockpit --help` and shell
completion still list them all, and a command's module is imported when it runs or is listed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # annotations only: typer >= 0.2x vendors click, and plain `pip install` has no click
    import click

# command -> the cockpit.cli module that defines it, in the order `cockpit --help` lists them
COMMAND_MODULES: dict[str, str] = {
    "run": "run", "resume": "run", "attach": "run",
    "stop": "steer", "pause": "steer", "continue": "steer", "set-lr": "steer",
    "runs": "runs", "presets": "presets",
    "swa": "passes", "calibrate": "passes", "tta": "passes", "ensemble": "passes", "lr-find": "passes",
    "report": "report", "compare": "compare", "export": "export", "predict": "export",
    "spec": "spec", "sweep": "sweep",
}


def load_command(name: str) -> click.Command | None:
    """The click command for `name`, importing its module now; None for an unknown name (or a
    command its module does not define)."""
    module_name = COMMAND_MODULES.get(name)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(f"{__package__}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{module_name}":
            raise
        return None
    commands = getattr(module, "COMMANDS", {})
    if name in commands:
        single = typer.Typer(rich_markup_mode=None)
        single.command(name)(commands[name])
        command = typer.main.get_command(single)
    elif isinstance(getattr(module, "app", None), typer.Typer):
        command = typer.main.get_command(module.app)
    else:
        return None
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands in COMMAND_MODULES are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = [n for n in super().list_commands(ctx) if n not in COMMAND_MODULES]
        return [n for n in COMMAND_MODULES if self.get_command(ctx, n) is not None] + eager

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and (command := load_command(cmd_name)) is not None:
            self.add_command(command, cmd_name)
        return command
