"""One line above the footer for the latest notification (instead of toasts over the panels), or
the screen's hint (what is below the fold) when there is none."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

MARK = {"information": "·", "warning": "!", "error": "✗"}
STYLE = {"information": "", "warning": "bold", "error": "bold reverse"}


class NoticeLine(Widget):
    """The newest unexpired notice (`✗ title: message` for errors: marked, not only coloured)."""

    DEFAULT_CSS = """
    NoticeLine { height: auto; max-height: 2; padding: 0 1; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, classes="notice-line")
        self.hint = ""
        self._shown: tuple = ()

    def on_mount(self) -> None:
        self.set_interval(0.25, self._check)
        self._check()

    def set_hint(self, hint: str) -> None:
        if hint != self.hint:
            self.hint = hint
            self._check()

    def _notice(self):
        notice = getattr(self.app, "last_notice", None)
        return None if notice is None or notice.has_expired else notice

    def _check(self) -> None:
        notice = self._notice()
        key = (notice.identity if notice else None, self.hint)
        if key != self._shown:
            self._shown = key
            self.display = bool(notice or self.hint)
            self.refresh(layout=True)

    def render(self) -> Text:
        notice = self._notice()
        if notice is None:
            return Text(self.hint, style="dim", no_wrap=True, overflow="ellipsis")
        text = Text(f"{MARK.get(notice.severity, '·')} ", style=STYLE.get(notice.severity, ""))
        if notice.title:
            text.append(f"{notice.title}: ", style="bold")
        text.append(_message(notice.message, notice.markup))
        return text


def _message(message: str, markup: bool) -> Text:
    if markup:
        try:
            return Text.from_markup(message)
        except Exception:  # a message with brackets that are not markup (a dict, a list)
            pass
    return Text(message)
