"""The run's head: id, state, device; a progress bar with epoch, step and ETA; throughput and memory."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from cockpit.core.formats import STATE_MARK, STATE_STYLE, fmt_duration, fmt_runtime
from cockpit.core.phase import startup_phase
from engine.store import NOT_RESPONDING, shown_state, silent_for

from ..refresh import DEFAULT_S, rate_text


class RunBar(Widget):
    """Two lines that say where the run is; drawn with characters, not only colour (NO_COLOR)."""

    DEFAULT_CSS = """
    RunBar { height: 2; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_id = ""
        self.state = ""
        self.meta: dict[str, Any] = {}
        self.step = 0
        self.last: dict[str, float] = {}
        self.eta: float | None = None
        self.elapsed: float | None = None
        self.refresh_s = DEFAULT_S  # how often the dashboard reads the run (said on the progress line)

    def show(self, run_id: str, state: str, meta: dict[str, Any], step: int, last: dict[str, float],
             eta: float | None, elapsed: float | None) -> None:
        self.run_id, self.state, self.meta, self.step = run_id, state, meta, step
        self.last, self.eta, self.elapsed = last, eta, elapsed
        self.refresh()

    def render(self) -> Text:
        width = max(self.size.width, 20)
        meta, state = self.meta, self.state
        if not self.run_id:
            return Text("no run attached: r lists the runs, e opens the spec editor", style="dim")
        head, shown = self._head(width), shown_state(state, meta)
        total = int(meta.get("total_steps") or 0)
        spe = int(meta.get("steps_per_epoch") or 0)
        epochs = int(meta.get("epochs") or 0)
        step = min(self.step, total) if total else self.step
        epoch = min(step // spe + 1, epochs) if spe else 0
        info = f" ep {epoch}/{epochs} step {step}/{total}"
        if shown == NOT_RESPONDING:  # no ETA: the last one froze with the worker
            info += f" no heartbeat for {fmt_duration(silent_for(meta))}"
        elif state == "paused":
            info += " ETA (paused)"
        elif state in ("created", "running"):
            info += f" ETA {fmt_duration(self.eta)}"
        elif self.elapsed is not None:
            info += f" took {fmt_duration(self.elapsed)}"
        ips = self.last.get("images_per_s")
        if ips is not None:
            info += f" │ {ips:,.0f} img/s"
        mem = self.last.get("memory_gb")
        if mem is not None:
            info += f" │ {mem:.2f} GB"
        frac = step / total if total else 0.0
        phase = startup_phase(meta, state)
        if phase is not None:  # before the first step: what the worker is doing, not "step 0/0"
            info, frac = f" {phase.text}", phase.fraction or 0.0
        rate = f" │ ↻ {rate_text(self.refresh_s)}"  # how fresh what is shown is, where the bar keeps room
        if width - len(info) - len(rate) - 2 >= 12 or self.refresh_s != DEFAULT_S:
            info += rate
        bar_w = max(width - len(info) - 2, 8)
        done = int(round(frac * bar_w))
        progress = Text(no_wrap=True, overflow="ellipsis")
        progress.append("█" * done, style="green")
        progress.append("░" * (bar_w - done), style="dim")
        progress.append(info)
        out = Text("\n", no_wrap=True, overflow="ellipsis").join([head, progress])
        out.no_wrap, out.overflow = True, "ellipsis"
        return out

    def _head(self, width: int) -> Text:
        """State, run id, device, the hint that q leaves the run going and what actually runs, fitted to the
        width: the device is shortened (its detail in brackets), then dropped, then the hint shortened, and
        what runs is shown where it fits, before anything is cut."""
        meta, state = self.meta, self.state
        shown = shown_state(state, meta)
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{STATE_MARK.get(shown, '?')} {shown} ", style=STATE_STYLE.get(shown, "bold"))
        head.append(self.run_id, style="bold")
        device = str(meta.get("device") or "")
        if state in ("created", "running", "paused"):
            tail, tail_style, short_tail = "  q leaves it running", "dim", "  q: keeps running"
        elif meta.get("error"):
            tail, tail_style = f"  {meta['error']}", "bold red" if state in ("failed", "crashed") else "yellow"
            short_tail = tail  # a reason is never shortened: the device gives way to it
        else:
            tail = tail_style = short_tail = ""
        room = width - len(head) - len(tail)
        for dev in (device, device.split(" (", 1)[0], ""):
            if len(dev) + 2 <= room or not dev:
                break
        if dev:
            head.append(f"  {dev}", style="dim")
        head.append(tail if len(head) + len(tail) <= width else short_tail, style=tail_style)
        # what actually ran (precision, compile, memory format), whole where it fits, else its precision alone
        ran = fmt_runtime(meta.get("runtime")).partition(" · ")[2]
        for shown_ran in (ran, ran.split(" · ", 1)[0]):
            if shown_ran and len(head) + 2 + len(shown_ran) <= width:
                head.append(f"  {shown_ran}", style="dim")
                break
        return head
