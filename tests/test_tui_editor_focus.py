"""The spec editor never edits what the user cannot see: at every size, ↓ / Tab / ↑ / Shift+Tab move
between fields and the form scrolls so that the focused field is on screen, and a key typed into a field
changes that field and no other. Pilot on the real app, every field of every section."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from textual.widgets import Input, Select, Switch, TabbedContent

from cockpit.tui.app import CockpitApp
from cockpit.tui.widgets.field_row import FieldRow
from cockpit.tui.widgets.section_form import SectionForm

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((80, 40), id="80x40")]


def assert_on_screen(app, row: FieldRow | None = None) -> FieldRow:
    """The focused widget is a field's control, inside the visible part of its form (and of every container
    above it), and it is what the terminal shows at its place; `row`, if given, is the field it belongs to."""
    focused = app.focused
    owner = next((n for n in focused.ancestors_with_self if isinstance(n, FieldRow)), None)
    assert owner is not None, f"focus left the fields: {focused!r}"
    if row is not None:
        assert owner is row, f"focus is on {owner.path}, expected {row.path}"
    form = next(n for n in focused.ancestors if isinstance(n, SectionForm))
    region = focused.region
    assert region.area > 0, f"{owner.path} has no place on screen"
    assert form.scrollable_content_region.contains_region(region), (
        f"{owner.path} at {region} is outside its form's visible region {form.scrollable_content_region} "
        f"(scrolled to {form.scroll_offset.y})")
    assert app.screen.can_view_entire(focused), owner.path
    shown, _ = app.screen.get_widget_at(region.x, region.y)
    assert focused in shown.ancestors_with_self, f"the terminal shows {shown!r} where {owner.path} should be"
    return owner


async def open_section(pilot, section: str) -> tuple[SectionForm, list[FieldRow]]:
    """Ctrl+N until the section's tab is open (as a user gets there; ↓ from the tabs on the first section):
    its first field has the focus."""
    app = pilot.app
    for _ in range(len(app.editor.start.sections)):
        if app.editor.query_one(TabbedContent).active == f"tab-{section}":
            break
        await pilot.press("ctrl+n")
        await pilot.pause()
    await pilot.pause()
    form = app.editor.query_one(f"#form-{section}", SectionForm)
    if app.focused not in form.rows()[0].control.ancestors_with_self:  # the editor opens on the section tabs
        await pilot.press("down")
        await pilot.pause()
    return form, form.rows()


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
async def test_every_key_that_moves_between_fields_keeps_the_focused_field_on_screen(runs_dir, size):
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        sections = [name for name, _ in app.editor.start.sections]
        scrolled = 0
        for section in sections:
            form, rows = await open_section(pilot, section)
            assert_on_screen(app, rows[0])
            for i, row in enumerate(rows[1:]):  # forward with ↓ and Tab in turn, back with ↑ and Shift+Tab
                await pilot.press(("down", "tab")[i % 2])  # waits until the app is idle: key and scroll done
                assert_on_screen(app, row)
                scrolled = max(scrolled, form.scroll_offset.y)
            for i, row in enumerate(reversed(rows[:-1])):
                await pilot.press(("up", "shift+tab")[i % 2])
                assert_on_screen(app, row)
            assert form.scroll_offset.y == 0, "back at the first field, the form is back at its top"
        if size == (80, 24):
            assert scrolled > 0, "at 80x24 some section is taller than the screen (else this test proves nothing)"


def leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(leaves(value, f"{prefix}.{key}" if prefix else key))
    return out


def changed_paths(before: dict, after: dict) -> set[str]:
    a, b = leaves(before), leaves(after)
    return {p for p in a.keys() | b.keys() if a.get(p, object()) != b.get(p, object())}


def edit_keys(row: FieldRow) -> list[str]:
    """Keys that change the focused field's value, as a user types them."""
    control = row.control
    if isinstance(control, Switch):
        return ["space"]
    if isinstance(control, Select):
        choices = list(row.field.choices)
        last = choices.index(control.value) == len(choices) - 1
        return ["enter", "up" if last else "down", "enter"]  # open the menu, the next choice, pick it
    assert isinstance(control, Input)
    return ["8" if control.value == "7" else "7"]  # the text is selected on focus: a digit replaces it


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
async def test_a_key_typed_changes_the_field_on_screen_and_no_other(runs_dir, size):
    """Every field of every section, reached with ↓ from the section's first field: the key typed changes
    exactly the focused field, which is on screen (focused and visible) after the key."""
    from engine.spec import diff_specs

    from cockpit.core.spec_form import check

    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        editor = app.editor
        edited = 0
        for section, _ in editor.start.sections:
            _, rows = await open_section(pilot, section)
            for i, row in enumerate(rows):
                if i:
                    await pilot.press("down")
                if row.field.tag:  # the optimizer's kind swaps the section's fields (tested in test_tui)
                    continue
                assert_on_screen(app, row)
                before = copy.deepcopy(editor.data)
                await pilot.press(*edit_keys(row))
                assert changed_paths(before, editor.data) == {row.path}, row.path
                old, new = check(before)[0], check(editor.data)[0]
                if old is not None and new is not None:
                    assert {path for path, _, _ in diff_specs(old, new)} == {row.path}, row.path
                assert_on_screen(app, row)
                edited += 1
        assert edited >= 60, f"only {edited} fields edited"


async def test_down_then_a_digit_in_training_edits_the_next_field_on_screen(runs_dir):
    """A bare `cockpit` at 80x24: Ctrl+N five times (Training), ↓, `5`: train.batch_size is 5, on screen;
    train.epochs is as it was (↓ scrolled the form under it and left it focused off screen)."""
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for _ in range(5):
            await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.editor.query_one(TabbedContent).active == "tab-train"
        epochs = app.editor.data["train"]["epochs"]
        await pilot.press("down", "5")
        await pilot.pause()
        assert app.editor.data["train"]["batch_size"] == 5
        assert app.editor.data["train"]["epochs"] == epochs
        assert_on_screen(app, app.editor.row("train.batch_size"))


async def test_page_keys_move_the_focus_and_a_mouse_scroll_takes_it_along(runs_dir):
    """PgDn / PgUp move the focus a page of fields (a scroll container would scroll without it); a scroll by
    other means (the mouse wheel) moves the focus to a field on screen, so typed keys edit what is seen."""
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form, rows = await open_section(pilot, "train")
        await pilot.press("pagedown")
        paged = assert_on_screen(app)
        assert rows.index(paged) >= 8, paged.path
        await pilot.press("pagedown")
        assert rows.index(assert_on_screen(app)) > rows.index(paged) and form.scroll_offset.y > 0
        await pilot.press("pageup", "pageup")
        assert assert_on_screen(app) is rows[0]

        form.scroll_end(animate=False)  # what the wheel does: the form moves, the focus stays
        await pilot.pause()
        await pilot.pause()
        moved = assert_on_screen(app)
        assert moved is not rows[0]
        before = copy.deepcopy(app.editor.data)
        await pilot.press(*edit_keys(moved))
        await pilot.pause()
        assert changed_paths(before, app.editor.data) == {moved.path}


async def test_down_on_a_choice_moves_on_and_enter_opens_its_menu(runs_dir):
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        source = app.editor.row("data.source")
        assert isinstance(source.control, Select) and app.editor.row("data.root") is not None
        source.control.focus()
        await pilot.pause()
        await pilot.press("down")
        await pilot.pause()
        assert_on_screen(app, app.editor.row("data.root"))
        assert not source.control.expanded
        await pilot.press("up", "enter")
        await pilot.pause()
        assert source.control.expanded, "Enter opens the menu"


@pytest.mark.slow
async def test_every_optimizers_fields_are_reached_by_keys_and_brackets_in_text_break_nothing(runs_dir):
    """Enter, ↓, Enter on the optimizer's kind swaps the section's fields; ↓ reaches each of them on screen
    with its help (adamw's says "each in [0, 1)": a bracket Textual's markup took for a tag, and the TUI
    crashed), and a value typed with an unclosed bracket is shown as the problem it is."""
    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.editor
        form, rows = await open_section(pilot, "optim")
        kinds = list(rows[0].field.choices)
        for kind in kinds[1:]:
            await pilot.press("enter", "down", "enter")  # the next kind on the open menu
            await pilot.pause()
            assert editor.data["optim"]["name"] == kind
            rows = form.rows()
            assert_on_screen(app, rows[0])
            for row in rows[1:]:
                await pilot.press("down")
                assert_on_screen(app, row)
                assert row.path in str(editor.query_one("#field-help").render())
            for _ in rows[1:]:
                await pilot.press("up")
        assert kinds[-2:] == ["adam", "rmsprop"]
        await pilot.press("enter", "up", "enter")  # back to adam, which has betas
        await pilot.pause()
        await editor.show_section("optim", "optim.betas")
        await pilot.pause()
        betas = editor.row("optim.betas")
        assert_on_screen(app, betas)
        assert "[0, 1)" in str(editor.query_one("#field-help").render())
        await pilot.press(*"[0.5")
        await pilot.pause()
        assert betas.control.value == "[0.5" and not editor.valid and betas.has_class("-invalid")
        assert "optim.betas" in str(editor.query_one("#spec-status").render())


async def test_a_burst_of_down_keys_lands_on_the_field_it_counts_to_and_shows_it(runs_dir):
    """↓ twelve times in one burst (key repeat, a macro), faster than the app draws: each key moves one field
    (a scroll still pending from the key before must not pull the focus back), and the last is on screen."""
    from textual import events

    app = CockpitApp(runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        form, rows = await open_section(pilot, "train")
        for _ in range(12):
            app.post_message(events.Key("down", None))
        await pilot.pause()
        await pilot.pause()
        assert_on_screen(app, rows[12])
        for _ in range(12):
            app.post_message(events.Key("up", None))
        await pilot.pause()
        await pilot.pause()
        assert_on_screen(app, rows[0])
