"""`cockpit spec check / schema`: validate a preset, print the spec's JSON schema."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from engine.spec import dump_spec, spec_schema

from .complete import complete_preset
from .common import SetOpt, err, resolve_spec

app = typer.Typer(help="Check presets and print the spec schema.", no_args_is_help=True)


@app.command("check")
def spec_check(preset: Optional[str] = typer.Argument(None, help="Preset file or name (default: quickstart).",
                                                      autocompletion=complete_preset),
               sets: list[str] = SetOpt) -> None:
    """Validate a preset (with overrides) and print the resolved spec as TOML."""
    spec, label = resolve_spec(preset, sets)
    sys.stdout.write(dump_spec(spec, f"resolved from {label}"))
    err.print(f"[green]ok:[/] {label} is a valid spec")


@app.command("schema")
def spec_schema_cmd() -> None:
    """Print the run spec's JSON schema."""
    print(json.dumps(spec_schema(), indent=2))
