"""`cockpit presets`: every preset (and sweep preset) with the description its header gives."""

from __future__ import annotations

import json

import typer
from rich import box
from rich.table import Table

from cockpit.core.preset_info import preset_infos

from .common import console


def presets(as_json: bool = typer.Option(False, "--json", help="One JSON object per preset, for scripts."),
            full: bool = typer.Option(False, "--full", "-f", help="The whole header, not only its first sentence.")) -> None:
    """List every preset and sweep preset with what it is for (its header comment)."""
    infos = preset_infos()
    if as_json:
        for i in infos:
            print(json.dumps({"name": i.name, "kind": i.kind, "path": str(i.path), "description": i.description}))
        return
    t = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    t.add_column("preset", no_wrap=True, style="bold")
    t.add_column("kind", no_wrap=True)
    t.add_column("what it is for", ratio=1)
    for i in infos:
        t.add_row(i.name, i.kind, i.description if full else i.summary)
    console.print(t)
    console.print("run one: cockpit run NAME · a sweep: cockpit sweep run NAME · the whole header: --full",
                  style="dim", highlight=False)


COMMANDS = {"presets": presets}
