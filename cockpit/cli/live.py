"""The headless Rich view of a run, read from the store (never from the worker directly)."""

from __future__ import annotations

import time
from typing import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cockpit.core.formats import LEVEL_STYLE, STATE_STYLE, fmt_duration, metric_label
from cockpit.core.pace import gpu_sized_notice
from cockpit.core.phase import startup_phase
from cockpit.core.selection import choose, selected
from cockpit.core.sparkline import span, sparkline
from cockpit.core.tail import RunTail
from engine.contracts import format_metric, metric_info
from engine.store import NOT_RESPONDING, Run, silent_for

from .plain import PlainLines

# the metrics drawn live; label, format and scale come from the metric catalogue
TRACES = ("train_loss", "train_acc", "test_acc", "lr", "grad_norm", "act/saturation", "act/dead", "images_per_s")
LABEL_W, VALUE_W = 21, 10  # "activation saturation" is the longest label; "1,234,567" the widest value


def render(tail: RunTail, width: int = 100) -> Group:
    snap = tail.snapshot
    meta = snap.meta
    total = snap.total_steps
    spe = int(meta.get("steps_per_epoch") or 0)
    epochs = int(meta.get("epochs") or 0)
    state, shown = snap.state, snap.shown
    head = Text.assemble(
        (f"{meta.get('run_id', tail.run.run_id)}", "bold"), "  ",
        (shown, STATE_STYLE.get(shown, "")), "  ",
        (str(meta.get("device", "")), "dim"),
    )
    epoch_now = min(int(snap.step // spe) + 1, epochs) if spe else 0
    progress = Table.grid(padding=(0, 1))
    phase = startup_phase(meta, state)
    if phase is not None:  # before the first step: what the worker is doing, with its own count
        progress.add_row(ProgressBar(total=1.0, completed=phase.fraction or 0.0, width=max(width - 60, 10),
                                     pulse=phase.fraction is None), Text(phase.text, style="cyan"))
    else:
        progress.add_row(
            ProgressBar(total=max(total, 1), completed=min(snap.step, total) if total else 0, width=max(width - 60, 10)),
            Text(f"epoch {epoch_now}/{epochs}  step {snap.step}/{total}", style="cyan"),
            Text(f"no heartbeat for {fmt_duration(silent_for(meta))}" if shown == NOT_RESPONDING else
                 f"ETA {fmt_duration(tail.eta_seconds())}" if snap.active else "", style="dim"),
        )
    parts: list = [head, progress]
    slow = gpu_sized_notice(snap.events)
    if slow is not None:  # said once, above the traces, for as long as the view is up
        parts.append(Text(f"! {slow['message']}", style="yellow"))
    parts.append(_traces(tail, width))
    # the run's own failure is told once, by the caller, after the live view
    alarms = [e for e in snap.events if e["level"] in ("warning", "error") and e["kind"] != "failed" and e is not slow][-4:]
    if alarms:
        lines = Text()
        for e in alarms:
            lines.append(f"step {e['step']:>6}  {e['kind']}: {e['message']}\n", style=LEVEL_STYLE.get(e["level"], ""))
        parts.append(Panel(lines, title="alarms", border_style="red", expand=False))
    return Group(*parts)


def _traces(tail: RunTail, width: int) -> Table:
    """One line per live metric: label, latest value, an honest sparkline (a scale that does not
    magnify noise) and the min‥max it spans; at 80 columns too."""
    last = tail.snapshot.last
    rows = []
    for name in (n for n in TRACES if n in last):
        info = metric_info(name)
        values = tail.values(name)
        rows.append((metric_label(name), format_metric(info, last[name]), values, info,
                     span(values, info.fmt.endswith("%"))))
    # best.pt's, chosen on validation (never the highest test acc), from the points already polled
    sel = choose(tail.series.get("test_acc", ()), tail.series.get("val_acc", ())) if "test_acc" in last else None
    if sel is not None and sel.test_acc is not None:
        rows.append(("best.pt test accuracy", format_metric("test_acc", sel.test_acc), [], None, ""))
    span_w = max((len(r[4]) for r in rows), default=0)
    label_w = min(max((len(r[0]) for r in rows), default=0), LABEL_W)
    spark_w = max(width - label_w - VALUE_W - span_w - 6, 0)  # 6: two spaces between each two columns
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    table.add_column(style="bold", width=label_w, no_wrap=True, overflow="ellipsis")
    table.add_column(justify="right", width=VALUE_W, no_wrap=True)
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(style="dim", justify="right", no_wrap=True)
    for label, value, values, info, rng in rows:
        line = sparkline(values, spark_w, log=info.log, honest=True) if info and spark_w >= 4 else ""
        table.add_row(label, value, line, rng)
    return table


def watch(run: Run, console: Console, on_interrupt: Callable[[int], bool] | None = None,
          refresh_per_second: float = 4.0, signals: Callable[[], int] | None = None) -> str:
    """Draw the run until it ends; returns the final state.

    `on_interrupt(n)` is called for the n-th Ctrl+C; returning False stops watching at once. With
    `signals` (how many have been recorded so far) the caller's handlers record signals instead of
    raising, and each new one is handled here between two frames, so none cuts another short.
    Where the console is not a terminal, `PlainLines` writes each event and evaluation as a line as
    it happens, and the last frame follows at the end.
    """
    tail = RunTail(run)
    tail.poll()
    lines = None if console.is_terminal else PlainLines(tail, console.file)
    interrupts = 0
    state = tail.snapshot.state
    with Live(render(tail, console.width), console=console, auto_refresh=False) as live:
        while True:
            try:
                if signals is not None and interrupts < signals():
                    interrupts += 1
                    if on_interrupt is None or not on_interrupt(interrupts):
                        state = tail.poll().state
                        break
                    continue
                state = tail.poll().state
                if lines is not None:
                    lines.update()
                live.update(render(tail, console.width), refresh=True)
                if state not in ("created", "running", "paused"):
                    break
                time.sleep(1 / refresh_per_second)
            except KeyboardInterrupt:
                interrupts += 1
                if on_interrupt is None or not on_interrupt(interrupts):
                    state = tail.poll().state
                    break
        if lines is not None:
            lines.update()  # the end's events and last evaluation, before the last frame
    if lines is not None:
        console.line()  # Live leaves its last frame without a newline when output is not a terminal
    return state


def final_table(run: Run) -> Table:
    """The end-of-run summary: each metric's final value and its value in best.pt (the evaluation chosen
    on validation, else the last), named and formatted as the metric catalogue says. No column is a
    maximum over the run: the highest test accuracy measured is never a result."""
    last = run.last_values()
    sel = selected(run)
    at_best = {}
    if sel is not None:
        at_best = {name: v for name in ("test_acc", "val_acc", "test_loss", "val_loss")
                   if (v := dict(run.series(name)).get(sel.step)) is not None}
    table = Table(show_header=True, header_style="bold")  # the live header above names the run and state
    table.add_column("metric")
    table.add_column("final", justify="right")
    table.add_column(f"best.pt (step {sel.step:,}, {sel.chosen_by})" if sel is not None else "best.pt", justify="right")
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "val_acc", "swa_test_acc", "images_per_s"):
        if name not in last:
            continue
        best = at_best.get(name)
        table.add_row(metric_label(name), format_metric(name, last[name]),
                      format_metric(name, best) if best is not None else "")
    return table
