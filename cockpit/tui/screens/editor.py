"""The spec editor: a tab per spec section, a widget per field, inline pydantic messages; load a
preset or a past run's spec, save as a preset, diff against what was loaded, launch (editor_files).

Its start is derived from the spec's models at every start (cockpit.core.editor_start). Nothing here
imports pydantic at module level."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static, TabbedContent, TabPane

from cockpit.core.editor_start import EditorStart, derive, initial_spec
from cockpit.core.form_fields import format_value, get_path, set_path
from cockpit.core.presets import user_presets_dir

from ..messages import FieldEdited, SpecChanged
from ..widgets.field_row import FieldRow
from ..widgets.section_form import SectionForm, scroll_into_view, show_focused
from .base import ViewScreen
from .editor_files import SpecFileActions

if TYPE_CHECKING:
    from textual.notifications import Notification

    from engine.spec import RunSpec


class SpecEditorScreen(SpecFileActions, ViewScreen):
    """Edit a RunSpec generated from its pydantic model; launch it when it validates."""

    AUTO_FOCUS = "#sections ContentTabs"  # not a text field: keys typed while the screen opens stay keys

    BINDINGS = [
        Binding("ctrl+r", "launch", "Launch", tooltip="Validate the spec, start a run in a worker process, watch it"),
        Binding("ctrl+o", "load", "Load", tooltip="Load a preset or a past run's spec"),
        Binding("ctrl+s", "save", "Save", tooltip="Save the spec as a preset in presets/"),
        Binding("ctrl+t", "diff", "Diff", tooltip="What changed against the loaded spec"),
        Binding("ctrl+n", "section(1)", "Next tab", tooltip="Next section"),
        Binding("ctrl+p", "section(-1)", "Prev tab", tooltip="Previous section"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("down,tab", "move_field(1)", "Next field", show=False, key_display="↓ tab"),
        Binding("up,shift+tab", "move_field(-1)", "Previous field", show=False, key_display="↑ ⇧tab"),
    ]

    def __init__(self, runs_dir: Path, preset: str | None = None, presets_dir: Path | None = None) -> None:
        super().__init__(id="editor")
        self.runs_dir = Path(runs_dir)
        self.presets_dir = Path(presets_dir) if presets_dir else user_presets_dir()
        self.preset_ref = preset
        start, spec = derive(preset)
        self._spec: RunSpec | None = spec  # the loaded spec (what the diff is taken against)
        self.start: EditorStart = start
        self._first_nodes: list | None = start.first_nodes  # the first tab's fields, for the first compose only
        self.label, self._problem = start.label, start.problem
        self.data = copy.deepcopy(start.data)
        self.loaded_data = copy.deepcopy(start.data)
        self.valid = not start.errors
        self.errors: list[tuple[str, str]] = list(start.errors)
        self.refusal: Notification | None = None  # a refused launch's (or save's) notice, while the spec is invalid

    @property
    def loaded(self) -> RunSpec:
        """The spec loaded (what the diff is taken against); read from the preset when first needed."""
        if self._spec is None:
            self._spec = initial_spec(self.preset_ref)[0]
        return self._spec

    @loaded.setter
    def loaded(self, spec: RunSpec) -> None:
        self._spec = spec

    # -- layout -----------------------------------------------------------------------------

    def body(self) -> ComposeResult:
        first, nodes = self._first_tab, self._first_nodes
        self._first_nodes = None  # a later compose (a loaded spec) derives its fields from the models
        with Horizontal(id="editor-top"):
            for f in self.start.top_fields:
                yield FieldRow(f, get_path(self.data, f.path))
            yield Static("", id="spec-status")
        with TabbedContent(id="sections", initial=f"tab-{first}"):
            for name, title in self.start.sections:
                with TabPane(title, id=f"tab-{name}"):
                    yield SectionForm(name, self.data, populated=name == first,
                                      nodes=nodes if name == self.start.sections[0][0] else None)
        yield Static("", id="field-help")

    @property
    def _first_tab(self) -> str:
        names = [name for name, _ in self.start.sections]
        active = getattr(self, "_active_tab", None)
        return active if active in names else names[0]

    async def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane
        form = pane.query_one(SectionForm) if pane is not None else None
        if form is not None and await form.populate():
            self.revalidate()

    def on_mount(self) -> None:
        self.sub_title = f"spec editor · {self.label}"
        self._show_problems(self.errors, changes=0)  # what validating the start's data said (nothing edited yet)
        if self._problem:
            self.notify(self._problem, severity="warning", timeout=8)

    def on_screen_resume(self) -> None:
        self.sub_title = f"spec editor · {self.label}"

    # -- editing ----------------------------------------------------------------------------

    async def on_field_edited(self, event: FieldEdited) -> None:
        event.stop()
        section = event.path.split(".", 1)[0]
        row = next((r for r in self.query(FieldRow) if r.path == event.path), None)
        if row is not None and row.field.tag:
            from cockpit.core.spec_form import switch_union

            self.data[section] = switch_union(self.data, section, event.value)
            form = self.query_one(f"#form-{section}", SectionForm)
            await form.rebuild(self.data)
            tag_row = next((r for r in form.rows() if r.path == event.path), None)
            if tag_row is not None:
                show_focused(tag_row.control)
        else:
            set_path(self.data, event.path, event.value)
            if row is not None:
                scroll_into_view(row)  # a field changes only where the user sees it
        self.revalidate()

    def revalidate(self) -> None:
        """Validate the edited data (pydantic), show what it says, and count the changes."""
        from cockpit.core.spec_form import check
        from engine.spec import diff_specs

        spec, errors = check(self.data)
        if spec is not None:
            changes = len(diff_specs(self.loaded, spec))
        else:
            changes = sum(1 for r in self.query(FieldRow)
                          if get_path(self.data, r.path) != get_path(self.loaded_data, r.path))
        self._show_problems(errors, changes)

    def _show_problems(self, errors: list[tuple[str, str]], changes: int) -> None:
        """Each message under its field (or on the status line), changed marks, tab marks, the status."""
        self.valid = not errors
        self.errors = errors
        if self.refusal is not None and not errors:  # what the refusal named is fixed: it no longer holds
            self.app.withdraw_notice(self.refusal)
            self.refusal = None
        rows = list(self.query(FieldRow))
        by_row: dict[str, list[str]] = {}
        unplaced: list[tuple[str, str]] = []
        paths = sorted((r.path for r in rows), key=len, reverse=True)
        for where, msg in errors:
            owner = next((p for p in paths if where == p or where.startswith(p + ".")), None)
            if owner is None:
                unplaced.append((where, msg))
            else:
                extra = where[len(owner) + 1:]
                by_row.setdefault(owner, []).append(f"{extra}: {msg}" if extra else msg)
        for r in rows:
            msgs = by_row.get(r.path)
            r.show_error("; ".join(msgs) if msgs else None)
            loaded = get_path(self.loaded_data, r.path)
            changed = get_path(self.data, r.path) != loaded
            r.show_changed(changed, loaded)
        self._mark_tabs(by_row)
        self._status(unplaced, changes)
        self.call_after_refresh(self.keep_focus_visible)  # a message shown above the field moved it down
        self.post_message(SpecChanged(self.valid, errors, changes))

    def _mark_tabs(self, by_row: dict[str, list[str]]) -> None:
        tabbed = self.query_one(TabbedContent)
        bad = {where.split(".", 1)[0].split(" ", 1)[0] for where, _ in self.errors}
        for name, title in self.start.sections:
            try:
                tab = tabbed.get_tab(f"tab-{name}")
            except Exception:
                continue
            label = f"{title} ✗" if name in bad else title
            if str(tab.label) != label:
                tab.label = label

    def _status(self, unplaced: list[tuple[str, str]], changes: int) -> None:
        """Valid or not, the changes, the first problem. Built as Text, never parsed as markup: a message or a
        value may hold brackets ("[0, 1)") that Textual's markup would take for a tag and fail on."""
        status = self.query_one("#spec-status", Static)
        count = f" · {changes} change{'s' if changes != 1 else ''} vs {self.label}"
        if self.valid:
            text = Text.assemble(("✓ valid", "bold"), count)
        else:
            n = len(self.errors)
            where, msg = (unplaced or self.errors)[0]
            where = "" if where == "(top level)" else f"{where}: "
            text = Text.assemble((f"✗ {n} problem{'s' if n != 1 else ''}", "bold"), count, f" · {where}{msg}")
        status.update(text, layout=False)
        status.set_class(not self.valid, "-invalid")

    # -- help for the focused field -----------------------------------------------------------

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        help_bar = self.query_one("#field-help", Static)
        node = event.widget
        while node is not None and not isinstance(node, FieldRow):
            node = node.parent
        if isinstance(node, FieldRow):
            f = node.field
            default = (f"  (default {_show_default(f.default)})", "dim") if f.default is not None else ""
            help_bar.update(Text.assemble((f.path, "bold"), f": {f.description}", default), layout=False)
        else:
            help_bar.update("Tab / ↓ moves to the next field · ^n / ^p change section · ^r launches", layout=False)

    # -- moving between fields: the focused field is always on screen ------------------------------

    def action_move_field(self, step: int) -> None:
        """↓ / Tab (↑ / Shift+Tab): the next (previous) field, scrolled into view at once."""
        chain = self.focus_chain
        if not chain:
            return
        here = chain.index(self.focused) if self.focused in chain else (-1 if step > 0 else 0)
        show_focused(chain[(here + step) % len(chain)])

    def keep_focus_visible(self) -> None:
        if self.focused is not None and self.is_current:
            scroll_into_view(self.focused)

    def on_resize(self) -> None:
        self.call_after_refresh(self.keep_focus_visible)

    # -- actions ----------------------------------------------------------------------------

    async def show_section(self, section: str, path: str | None = None) -> None:
        """Open a section's tab (building its fields) and focus a field (the first by default)."""
        tabbed = self.query_one(TabbedContent)
        tabbed.active = f"tab-{section}"
        form = self.query_one(f"#form-{section}", SectionForm)
        if await form.populate():
            self.revalidate()
        rows = form.rows()
        row = next((r for r in rows if r.path == path), rows[0] if rows else None)
        if row is not None:
            self.call_after_refresh(show_focused, row.control)

    async def action_section(self, step: int) -> None:
        tabbed = self.query_one(TabbedContent)
        ids = [name for name, _ in self.start.sections]
        current = ids.index(tabbed.active[4:]) if tabbed.active[4:] in ids else 0
        await self.show_section(ids[(current + step) % len(ids)])

    def action_leave_field(self) -> None:
        from textual.widgets import Tabs

        self.query_one(TabbedContent).query_one(Tabs).focus()

    # -- for tests and the app --------------------------------------------------------------

    def row(self, path: str) -> FieldRow:
        return next(r for r in self.query(FieldRow) if r.path == path)

    def current(self) -> dict[str, Any]:
        return self.data


def _show_default(v: Any) -> str:
    return format_value("toml", v) if not isinstance(v, str) else repr(v)

