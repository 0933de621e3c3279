"""What was done to a run beyond its spec, read from its events: LR set live, pauses, SWA started by
command, finishing passes (on the live model or on a checkpoint), stops and resumes.

Two runs with specs that differ in one field can have been trained very differently; a comparison that
shows only the spec diff says something false. Every view of a comparison (the terminal, the TUI, the
HTML and JSON reports) lists these, from this one function."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .formats import fmt_duration

TITLE = "What was done to each run beyond its spec (from its events)"
NONE = "nothing: it trained as its spec says"

# finishing passes: the event kind each records, and what it is called
PASS_EVENTS = {"tta": "TTA", "calibrated": "calibration", "swa_pass": "SWA pass", "ensemble": "ensemble",
               "lr_find": "LR range test"}
# SWA started for these reasons is the spec's doing (its schedule, or a resume of a run that had started it)
SPEC_SWA = ("spec", "resumed", "schedule")


def interventions(events: Iterable[Mapping[str, Any]], steps_per_epoch: int = 0) -> list[dict[str, Any]]:
    """The run's interventions in the order they happened: {step, epoch, action, detail}.

    events: the store's event rows (their `data` a JSON text) or a report summary's events (a dict)."""
    out = []
    paused_at: float | None = None  # the wall clock of the pause in force
    for e in events:
        found = _intervention(e["kind"], e["message"] or "", event_data(e["data"]))
        if found is None:
            continue
        if found[0] == "pause":
            paused_at = e["wall"]
        elif found[0] == "continue" and paused_at is not None and e["wall"] is not None:
            found = ("continue", f"training continued after {fmt_duration(e['wall'] - paused_at)} paused")
            paused_at = None
        step = int(e["step"] or 0)
        out.append({"step": step, "epoch": step / steps_per_epoch if steps_per_epoch else None,
                    "action": found[0], "detail": found[1]})
    return out


def event_data(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        data = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _intervention(kind: str, message: str, data: dict[str, Any]) -> tuple[str, str] | None:
    """(action, detail) for an event that is an intervention, else None."""
    if kind == "set_lr":
        return "set-lr", _lr_detail(message, data)
    if kind == "paused":
        return "pause", "training paused"
    if kind in ("continued", "resumed"):  # "resumed": what runs recorded before `continue` was its name
        return "continue", "training continued"
    if kind == "swa_started":
        why = data.get("why") or message.rsplit("(", 1)[-1].rstrip(")")  # runs recorded before `why` was data
        return None if why in SPEC_SWA else ("swa", "SWA started by command")
    if kind in PASS_EVENTS:
        checkpoint = data.get("checkpoint")
        on = "the live model" if checkpoint == "live" else checkpoint
        return "pass", f"{PASS_EVENTS[kind]} on {on}" if on else PASS_EVENTS[kind]
    if kind == "stopped":  # the message is the reason the stop gave ("cockpit stop")
        return "stop", message if message.startswith("stop") else f"stopped: {message}" if message else "stopped"
    if kind == "resumed_run":
        return "resume", message
    return None


def _lr_detail(message: str, data: dict[str, Any]) -> str:
    lr, layer, mult = data.get("lr"), data.get("layer"), data.get("mult")
    if layer and mult is not None:
        return f"layer {layer} multiplier {mult:g}"
    if lr is not None:
        return f"{'SWA' if data.get('swa') else 'base'} LR {lr:g}"
    return message.replace(" (was set live)", "")  # an event recorded without its numbers


def intervention_rows(named: list[tuple[str, list[dict[str, Any]]]]) -> list[tuple[str, str, str, str, str]]:
    """(run, step, epoch, action, detail) table rows for (run name, its interventions) pairs: the name on a
    run's first row, and a row saying so for a run that had none."""
    rows = []
    for name, done in named:
        if not done:
            rows.append((name, "", "", "", NONE))
        for k, x in enumerate(done):
            epoch = "" if x["epoch"] is None else f"{x['epoch']:.2f}"
            rows.append((name if k == 0 else "", f"{x['step']:,}", epoch, x["action"], x["detail"]))
    return rows
