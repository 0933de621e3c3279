"""Small modal screens: confirm, load a spec, save a preset, the spec diff, and the live LR change."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from cockpit.core.lr_now import LRNow
from cockpit.core.preset_info import PresetInfo, header

from ..widgets.ordered_input import OrderedInput


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no for a destructive action (y / n, Enter confirms, Esc cancels)."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "", yes: str = "yes") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.detail = detail
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Label(self.question, classes="dialog-title")
            if self.detail:
                yield Static(self.detail, classes="dialog-detail")
            yield Static(f"[b]y[/b] / Enter: {self.yes}    [b]n[/b] / Esc: cancel", classes="dialog-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


SUMMARY_W = 54  # a preset's name and first sentence on one line of the 64-wide dialog


class LoadSpecScreen(ModalScreen[tuple[str, Path] | None]):
    """Pick a preset (presets/) or a past run's spec; Enter loads it, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, presets: list[Path], runs: list[tuple[str, str, Path]]) -> None:
        super().__init__(classes="dialog-screen")
        self.presets = presets
        self.runs = runs  # (run id, state, path)
        self.about = {i: PresetInfo(p.stem, "run", p, header(p)) for i, p in enumerate(presets)}

    def compose(self) -> ComposeResult:
        options: list[Option | None] = [Option(Text("presets", style="bold"), disabled=True)]
        for i, p in enumerate(self.presets):
            line = Text(f"  {p.stem}")
            summary = self.about[i].summary
            room = SUMMARY_W - len(p.stem)
            if summary and room > 8:  # one line each: the whole header shows under the list
                line.append("  " + (summary if len(summary) <= room else summary[:room - 1] + "…"), style="dim")
            options.append(Option(line, id=f"preset:{i}"))
        options.append(None)
        options.append(Option(Text("past runs", style="bold"), disabled=True))
        if not self.runs:
            options.append(Option(Text("  (none)", style="dim"), disabled=True))
        for i, (run_id, state, _) in enumerate(reversed(self.runs)):
            options.append(Option(f"  {run_id}  ({state})", id=f"run:{len(self.runs) - 1 - i}"))
        with Vertical(classes="dialog", id="load"):
            yield Label("Load a spec: a preset or a past run's spec.toml", classes="dialog-title")
            yield OptionList(*options, id="load-options", compact=True)
            yield Static("", id="load-about", classes="dialog-detail")
            yield Static("Enter: load    Esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.focus()
        for idx in range(ol.option_count):
            if not ol.get_option_at_index(idx).disabled:
                ol.highlighted = idx
                break

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """The highlighted preset's whole header (what it is for) under the list."""
        kind, _, index = (event.option.id or "").partition(":")
        about = self.about.get(int(index)) if kind == "preset" else None
        text = about.description if about and about.description else ""
        if kind == "run":
            text = f"the spec.toml of run {self.runs[int(index)][0]}, exactly as it ran"
        self.query_one("#load-about", Static).update(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, _, index = (event.option.id or "").partition(":")
        if kind == "preset":
            self.dismiss(("preset", self.presets[int(index)]))
        elif kind == "run":
            self.dismiss(("run", self.runs[int(index)][2]))

    def action_cancel(self) -> None:
        self.dismiss(None)


NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class SavePresetScreen(ModalScreen[str | None]):
    """Ask for a preset name; Enter saves to presets/<name>.toml, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, folder: Path) -> None:
        super().__init__(classes="dialog-screen")
        self.default = name
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="save"):
            yield Label(f"Save the spec as a preset in {self.folder}/", classes="dialog-title")
            yield OrderedInput(self.default, id="preset-name", compact=True, placeholder="preset name")
            yield Static("", id="save-error", classes="field-error")
            yield Static("Enter: save    Esc: cancel", classes="dialog-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip().removesuffix(".toml")
        if not NAME_RE.match(name):
            self.query_one("#save-error", Static).update("✗ letters, digits, _ . - only (up to 64)")
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DiffScreen(ModalScreen[None]):
    """What the edited spec changes against the spec that was loaded."""

    BINDINGS = [Binding("escape,ctrl+t,q", "close", "Close")]

    def __init__(self, label: str, rows: list[tuple[str, Any, Any]]) -> None:
        super().__init__(classes="dialog-screen")
        self.label = label
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="diff"):
            n = len(self.rows)
            yield Label(f"{n} change{'s' if n != 1 else ''} against {self.label}", classes="dialog-title")
            with VerticalScroll(id="diff-body"):
                if not self.rows:
                    yield Static("the spec is the one that was loaded", classes="dialog-detail")
                else:
                    table = Table(box=None, pad_edge=False, header_style="bold", expand=True)
                    table.add_column("field")
                    table.add_column("loaded", justify="right")
                    table.add_column("now", justify="right")
                    for key, a, b in self.rows:
                        table.add_row(key, _show(a), Text(_show(b), style="bold"))
                    yield Static(table)
            yield Static("Esc: close", classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)


def _show(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


class SetLRScreen(ModalScreen[tuple[str | None, float] | None]):
    """The live LR change: the base LR (which the schedule multiplies: the dialog says by what, now), or one
    param group's multiplier."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, lr: LRNow | None, groups: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.lr = lr
        self.groups = groups

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="set-lr"):
            yield Label("Change the learning rate live (logged as an event)", classes="dialog-title")
            what = "SWA LR" if self.lr and self.lr.swa else "base LR"
            options = [(what, "")] + [(f"group {g}: multiplier", g) for g in self.groups]
            yield Select(options, value="", allow_blank=False, id="lr-target", compact=True)
            value = f"{self.lr.base:.4g}" if self.lr else ""  # the base, never the scheduled LR shown elsewhere
            yield OrderedInput(value, id="lr-value", compact=True, placeholder="a number > 0, e.g. 0.01")
            yield Static(self._meaning(""), id="lr-now", classes="dialog-detail")
            yield Static("", id="lr-error", classes="field-error")
            yield Static("Tab: next    Enter: apply    Esc: cancel", classes="dialog-keys")

    def _meaning(self, group: str) -> str:
        if group:
            return f"the value multiplies the base LR for the group {group} (its schedule carries on)"
        if self.lr is None:
            return "the value is the base LR: the schedule multiplies it by its factor at each step"
        return self.lr.text()

    def on_mount(self) -> None:
        self.query_one("#lr-value", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        inp = self.query_one("#lr-value", Input)
        group = event.value if event.value and event.value is not Select.NULL else ""
        if group:
            inp.placeholder = "multiplier > 0, e.g. 0.5"
            inp.value = ""
        else:
            inp.placeholder = "a number > 0, e.g. 0.01"
        self.query_one("#lr-now", Static).update(self._meaning(str(group)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = float(event.value)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            self.query_one("#lr-error", Static).update("✗ needs a number > 0")
            return
        target = self.query_one("#lr-target", Select).value
        self.dismiss((target or None, value))

    def action_cancel(self) -> None:
        self.dismiss(None)
