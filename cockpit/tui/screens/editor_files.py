"""The spec editor's file keys: launch the spec (a run in a worker process), load a preset or a past
run's spec, save it as a preset, and show its diff against what was loaded. The dialogs and the launcher
are imported when a key is first used, and so are the spec's models (pydantic): the editor paints
without them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.widgets import TabbedContent

from cockpit.core.editor_start import EditorStart
from cockpit.core.form_fields import get_path
from cockpit.core.presets import list_presets
from engine.atomic_write import write_text_atomic
from engine.store import Run, StoreError, iter_runs

from ..messages import RunStarted
from ..widgets.field_row import FieldRow

if TYPE_CHECKING:
    from textual.notifications import Notification

    from engine.spec import RunSpec


class SpecFileActions:
    """A mixin of SpecEditorScreen (which has the bindings, the edited data and the validation)."""

    runs_dir: Path
    presets_dir: Path
    start: EditorStart
    loaded: RunSpec
    label: str
    data: dict[str, Any]
    loaded_data: dict[str, Any]
    refusal: Notification | None  # the refused launch's notice (taken off once the spec is valid)

    async def action_launch(self) -> None:
        from cockpit.core.launch import create_run, start_worker
        from cockpit.core.spec_form import check

        spec, errors = check(self.data)
        if spec is None:
            await self._refuse(errors)
            return
        try:
            run = create_run(self.runs_dir, spec, preset=self.label)  # the same checks as `cockpit run`
        except (ValueError, StoreError) as exc:
            self.notify(str(exc), title="cannot launch", severity="error", timeout=10)
            return
        try:
            proc = start_worker(run)
        except OSError as exc:
            self.notify(f"cannot start the worker: {exc}", severity="error", timeout=10)
            return
        finally:
            run.close()
        self.app.remember_worker(proc)  # type: ignore[attr-defined]
        self.notify(f"started {run.run_id} (worker pid {proc.pid})", title="launched")
        self.post_message(RunStarted(run.path, proc.pid))

    async def _refuse(self, errors: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"{w}: {m}" for w, m in errors[:4])
        more = f"\n(+{len(errors) - 4} more)" if len(errors) > 4 else ""
        self.notify(f"fix the spec first:\n{escape(lines)}{more}", title="launch refused", severity="error",
                    timeout=8)
        self.refusal = self.app.last_notice  # type: ignore[attr-defined]
        first = errors[0][0] if errors else ""
        section = first.split(".", 1)[0]
        if section in [n for n, _ in self.start.sections]:
            await self.show_section(section, first)
            rows = [r for r in self.query(FieldRow) if first == r.path or first.startswith(r.path + ".")]
            if rows:
                self.call_after_refresh(rows[-1].control.focus)
        else:
            for r in self.query(FieldRow):
                if first == r.path:
                    self.call_after_refresh(r.control.focus)

    def action_load(self) -> None:
        from .dialogs import LoadSpecScreen

        runs = []
        for run in iter_runs(self.runs_dir, readonly=True):
            try:
                runs.append((run.run_id, run.meta().get("state", "?"), run.path))
            finally:
                run.close()
        self.app.push_screen(LoadSpecScreen(list_presets(), runs), self._loaded)

    async def _loaded(self, choice: tuple[str, Path] | None) -> None:
        if choice is None:
            return
        from engine.spec import SpecError, load_spec

        kind, path = choice
        try:
            if kind == "preset":
                spec, label = load_spec(path), path.stem
            else:
                run = Run(path, readonly=True)
                try:
                    spec = run.spec()
                    label = run.run_id
                finally:
                    run.close()
        except (SpecError, StoreError, OSError) as exc:
            self.notify(str(exc), title="cannot load", severity="error", timeout=10)
            return
        await self.load(spec, label)
        self.notify(f"loaded {label}")

    async def load(self, spec: RunSpec, label: str) -> None:
        """Replace the edited spec (and the reference the diff is taken against)."""
        from cockpit.core.spec_form import spec_data

        self.loaded, self.label = spec, label
        self.data = spec_data(spec)
        self.loaded_data = spec_data(spec)
        self._active_tab = self.query_one(TabbedContent).active[4:] or None
        await self.recompose()
        self.sub_title = f"spec editor · {self.label}"
        self.revalidate()

    def action_save(self) -> None:
        from cockpit.core.spec_form import check

        from .dialogs import SavePresetScreen

        spec, errors = check(self.data)
        if spec is None:
            self.notify("only a valid spec can be saved", title="save refused", severity="error")
            self.refusal = self.app.last_notice  # type: ignore[attr-defined]
            return
        self.app.push_screen(SavePresetScreen(self.label, self.presets_dir), lambda name: self._save(spec, name))

    def _save(self, spec: RunSpec, name: str | None) -> None:
        if not name:
            return
        from .dialogs import ConfirmScreen

        path = self.presets_dir / f"{name}.toml"
        if path.exists():
            self.app.push_screen(ConfirmScreen(f"Overwrite {path}?", yes="overwrite"),
                                 lambda yes: yes and self._write(spec, name, path))
        else:
            self._write(spec, name, path)

    def _write(self, spec: RunSpec, name: str, path: Path) -> None:
        from cockpit.core.spec_form import spec_data
        from engine.spec import dump_spec

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, dump_spec(spec, f"{name}: saved from the cockpit spec editor"))
        except OSError as exc:
            self.notify(f"cannot save {path}: {exc}", severity="error", timeout=10)
            return
        self.loaded, self.label = spec, name
        self.loaded_data = spec_data(spec)
        self.sub_title = f"spec editor · {self.label}"
        self.revalidate()
        self.notify(f"saved {path}", title="preset saved")

    def action_diff(self) -> None:
        from cockpit.core.spec_form import check
        from engine.spec import diff_specs

        from .dialogs import DiffScreen

        spec, _ = check(self.data)
        if spec is not None:
            rows = diff_specs(self.loaded, spec)
        else:
            rows = [(r.path, get_path(self.loaded_data, r.path), get_path(self.data, r.path))
                    for r in self.query(FieldRow) if get_path(self.data, r.path) != get_path(self.loaded_data, r.path)]
        self.app.push_screen(DiffScreen(self.label, rows))
