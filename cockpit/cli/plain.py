"""`cockpit run` and `attach` when stdout is not a terminal (a pipe, `nohup`, a CI log): one plain
line per event (the worker's phase changes, start, alarms, steering, the end) and per evaluation,
written and flushed as they happen. A live view redraws in place, which a file cannot show: Rich
only writes its last frame there, so without these lines a log stays empty for the whole run."""

from __future__ import annotations

import time
from typing import Any, Mapping, TextIO

from cockpit.core.formats import fmt_duration, metric_label
from cockpit.core.pace import gpu_sized_notice
from cockpit.core.phase import startup_phase
from cockpit.core.tail import RunTail
from engine.contracts import format_metric
from engine.store import NOT_RESPONDING, silent_for

# what an evaluation line shows, in this order, where the run has it at that step
EVAL_METRICS = ("test_acc", "val_acc", "test_loss")


class PlainLines:
    """Writes what is new in a run's tail since the last `update()` as lines."""

    def __init__(self, tail: RunTail, out: TextIO):
        self.tail, self.out = tail, out
        self.event_id = tail.event_id  # what happened before we looked is summed up in one line
        self.eval_step = _last_step(tail, "test_acc")
        self.state = ""
        self.shown = ""  # the state as shown: says when a live run stops and starts responding
        self._summary()

    def _write(self, text: str) -> None:
        self.out.write(f"{time.strftime('%H:%M:%S')}  {text}\n")
        self.out.flush()

    def _summary(self) -> None:
        """Where the run stands when we start to follow it (its history is in the report)."""
        snap = self.tail.snapshot
        self.state, self.shown = snap.state, snap.shown
        phase = startup_phase(snap.meta, snap.state)
        where = phase.text if phase else self._progress()
        if snap.shown == NOT_RESPONDING:
            where = f"no heartbeat for {fmt_duration(silent_for(snap.meta))}"
        self._write(f"{snap.meta.get('run_id', self.tail.run.run_id)}  {snap.shown}  {where}".rstrip())
        if (slow := gpu_sized_notice(snap.events)) is not None:  # said before we looked: said again, once
            self._write(_event_line(slow))
        if self.eval_step is not None:
            self._write(self._evaluation(self.eval_step))

    def _progress(self) -> str:
        snap = self.tail.snapshot
        meta, total = snap.meta, snap.total_steps
        if not total:
            return ""
        spe, epochs = int(meta.get("steps_per_epoch") or 0), int(meta.get("epochs") or 0)
        epoch = min(int(snap.step // spe) + 1, epochs) if spe else 0
        eta = f"  ETA {fmt_duration(self.tail.eta_seconds())}" if snap.active else ""
        return f"epoch {epoch}/{epochs}  step {snap.step:,}/{total:,}{eta}"

    def _evaluation(self, step: int) -> str:
        at = {name: v for name in EVAL_METRICS if (v := _value_at(self.tail, name, step)) is not None}
        loss = self.tail.snapshot.last.get("train_loss")
        cells = [f"{metric_label(n)} {format_metric(n, v)}" for n, v in at.items()]
        if loss is not None:
            cells.insert(0, f"{metric_label('train_loss')} {format_metric('train_loss', loss)}")
        return f"evaluation at step {step:,}: " + "  ".join(cells) + f"  ({self._progress()})"

    def update(self) -> None:
        snap = self.tail.snapshot
        lines: list[tuple[int, int, str]] = []  # (step, 0 evaluation / 1 event, text): an end after its last evaluation
        for event in (e for e in snap.events if e["id"] > self.event_id):
            self.event_id = event["id"]
            lines.append((event["step"], 1, _event_line(event)))
        for step in sorted({s for s, _ in self.tail.series.get("test_acc", ())
                            if self.eval_step is None or s > self.eval_step}):
            self.eval_step = step
            lines.append((step, 0, self._evaluation(step)))
        for _, _, text in sorted(lines, key=lambda x: x[:2]):
            self._write(text)
        if snap.shown != self.shown and NOT_RESPONDING in (snap.shown, self.shown):  # no event says it
            self._write(f"not responding: no heartbeat for {fmt_duration(silent_for(snap.meta))}"
                        if snap.shown == NOT_RESPONDING else f"responding again ({snap.shown})")
        self.shown = snap.shown
        if snap.state != self.state:  # a state no event has said (the worker gone, say)
            self.state = snap.state
            if snap.state not in ("created", "running") and not any(e["kind"] == snap.state for e in snap.events[-3:]):
                self._write(f"state: {snap.state}")


def _event_line(event: Mapping[str, Any]) -> str:
    mark = {"warning": "warning ", "error": "error "}.get(event["level"], "")
    step = f"step {event['step']:,}  " if event["step"] else ""
    return f"{step}{mark}{event['kind']}: {event['message']}"


def _last_step(tail: RunTail, name: str) -> int | None:
    pts = tail.series.get(name)
    return pts[-1][0] if pts else None


def _value_at(tail: RunTail, name: str, step: int) -> float | None:
    return next((v for s, v in reversed(tail.series.get(name, ())) if s == step), None)
