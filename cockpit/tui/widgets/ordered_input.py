"""Every text box of the cockpit (spec fields, the preset name, a new LR): Textual's Input, with its own
editing keys applied in the order they were typed."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """Input inserts a typed character at once, but a bound key (backspace, ←, ctrl+u, ctrl+k...) first
    bubbles up to the app, which then runs the Input's action. When keys come faster than that (a loaded
    box, a paste of keystrokes, a key macro) a character typed after the bound key lands before it:
    `0.5`, backspace, `1` became `0.5` instead of `0.1`, a valid and wrong learning rate. Here the Input's
    own bindings run where the key arrives (Textual issue 6605; the same change is proposed upstream
    in PR 6631). Priority bindings are checked by the app before a key reaches the field, as before;
    keys the Input does not bind (↑, ↓, Esc, the editor's ctrl keys) bubble as before."""

    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            for binding in self._bindings.key_to_bindings.get(event.key, ()):
                if not binding.priority and await self.app.run_action(binding.action, self):
                    event.stop()
                    event.prevent_default()
                    return
        await super()._on_key(event)
