"""`summarize(run) -> dict`: the run summary every report format renders from.

The dict is the JSON report (`report.json`), documented key by key in docs/report-schema.md.
It is made from the store alone (meta, spec.toml, metrics, events, results), so it works for
finished, stopped, failed, crashed and still-running runs. Everything in it is plain JSON:
non-finite numbers become null, timestamps are unix seconds.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any, cast

from engine.spec import SpecError, diff_specs, dump_spec, spec_to_dict
from cockpit import __version__
from engine.contracts import METRICS
from engine.store import ACTIVE_STATES, WORKER_GONE, Run, StoredResult, shown_state

from cockpit.core.finishing import finishing_rows, finite
from cockpit.core.interventions import interventions
from cockpit.core.selection import Selection, selected

from .schema import SCHEMA, Summary  # noqa: F401 (SCHEMA: the keys every report has)

SCHEMA_VERSION = 1
MAX_POINTS = 500  # per series, for charts and the JSON

# series kept in the summary (downsampled): every metric of the catalogue; lr/<layer> are added when present
SERIES = tuple(METRICS)
# metrics with a peak: accuracies are maximised, losses minimised (a peak is what was measured, never
# what was selected: the "best" of an evaluated metric is its value at best.pt's evaluation)
PEAK_MAX = tuple(n for n, info in METRICS.items() if info.group == "accuracy")
PEAK_MIN = tuple(n for n, info in METRICS.items() if info.group == "loss")
EVAL_METRICS = ("test_acc", "test_loss", "val_acc", "val_loss")  # measured at each evaluation: best.pt has one

# events drawn on the timeline of every step chart (steering actions and alarms); others only listed
# ("resumed" is how runs recorded before the `continue` command named un-pausing)
STEERING_KINDS = ("set_lr", "paused", "continued", "resumed", "swa_started", "swa_finished", "checkpoint", "resumed_run")
END_KINDS = ("stopped", "failed", "crashed")
ALARM_LEVELS = ("warning", "error")

RESULT_KINDS = ("hardest", "swa", "calibrate", "tta", "ensemble", "confusion")
HIST_EDGES = [round(0.5 * i, 1) for i in range(11)]  # per-sample loss histogram (last bin takes the overflow)


def clean(obj: Any) -> Any:
    """Deep copy with non-finite floats replaced by None (so json.dumps writes strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def downsample(points: list[tuple[int, float | None]], max_points: int = MAX_POINTS) -> list[tuple[int, float | None]]:
    """At most ~max_points points, keeping each bucket's min and max (spikes survive, shape holds) and
    always the first and the last point (so "last" in every view is the store's last value)."""
    if len(points) <= max_points:
        return list(points)
    buckets = max((max_points - 2) // 2, 1)  # two left for the first and last points
    n = len(points)
    out: list[tuple[int, float | None]] = []
    for i in range(buckets):
        chunk = points[i * n // buckets:(i + 1) * n // buckets]
        vals = [p for p in chunk if p[1] is not None]
        if not vals:
            if chunk:
                out.append(chunk[0])
            continue
        lo = min(vals, key=lambda p: p[1])
        hi = max(vals, key=lambda p: p[1])
        out.extend(sorted({lo, hi}, key=lambda p: p[0]) if lo != hi else [lo])
    if out[0] != points[0]:
        out.insert(0, points[0])
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def _peak(points: list[tuple[int, float | None]], mode: str) -> dict[str, Any] | None:
    vals = [(s, v) for s, v in points if v is not None]
    if not vals:
        return None
    pick = max if mode == "max" else min
    step, value = pick(vals, key=lambda p: (p[1], -p[0]) if mode == "max" else (p[1], p[0]))
    return {"value": value, "step": step, "mode": mode}


def _layers(order: list[str], last: dict[str, float | None]) -> list[dict[str, Any]]:
    """One row per block / param group: its last per-layer instrument values."""
    cols = {"grad_norm/": "grad_norm", "update_ratio/": "update_ratio", "lr/": "lr",
            "act/mean/": "act_mean", "act/std/": "act_std", "act/zeros/": "act_zeros",
            "act/dead/": "act_dead", "act/saturation/": "act_saturation", "act/gate/": "act_gate",
            "act/gate_mean/": "act_gate_mean"}
    rows: dict[str, dict[str, Any]] = {}
    for name in order:
        for prefix, col in cols.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                layer = name[len(prefix):]
                rows.setdefault(layer, {"name": layer})[col] = last.get(name)
    return list(rows.values())


def _spec(run: Run) -> tuple[Any, dict[str, Any] | None, str, str | None]:
    """(RunSpec or None, spec dict, TOML text, error)."""
    path = run.path / "spec.toml"
    try:
        spec = run.spec()
    except (OSError, SpecError) as exc:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        return None, None, text, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return spec, spec_to_dict(spec), dump_spec(spec), None


def summarize(run: Run, against: Run | None = None, max_points: int = MAX_POINTS) -> Summary:
    """Everything a report shows, as plain JSON-ready data (schema_version 1, typed in report/schema.py)."""
    state = run.observed_state()  # a run whose worker is gone reads as crashed (nothing is written)
    now = time.time()
    spec, spec_dict, spec_toml, spec_error = _spec(run)
    order = run.metric_names_by_first_write()
    selection = selected(run)
    last = {k: finite(v) for k, v in run.last_values().items()}
    series, peak, raw = _series(run, order, max_points)
    run_info = _run_info(run, state, now)
    latest, results = _results(run)
    difficulty = _difficulty(run, order, series, last)
    events = _events(run, run_info["steps_per_epoch"])
    summary: Summary = {
        "schema_version": SCHEMA_VERSION,
        "generated": now,
        "cockpit_version": __version__,
        "run": run_info,
        "spec": spec_dict,
        "spec_toml": spec_toml,
        "spec_error": spec_error,
        "against": _against(run, spec, spec_error, against) if against is not None else None,
        "metrics": {"final": last, "best": _best(raw, selection), "names": order, "selected": _selected(selection),
                    "peak": peak},
        "finishing": finishing_rows(last, latest, max((st for st, _ in run.series("test_acc")), default=None)),
        "results": results,
        "series": series,
        "difficulty": difficulty,
        "layers": _layers(order, last),
        "events": events,
        "interventions": interventions(events, run_info["steps_per_epoch"]),
        "notes": _notes(state, series, results, difficulty, order),
    }
    return cast(Summary, clean(summary))


def _selected(sel: Selection | None) -> dict[str, Any] | None:
    """best.pt's evaluation: step, test accuracy, how it was chosen, and a line that says so."""
    return None if sel is None else {"step": sel.step, "test_acc": sel.test_acc, "val_acc": sel.val_acc,
                                     "basis": sel.basis, "says": sel.says}


def _best(raw: dict[str, list[tuple[int, float | None]]], sel: Selection | None) -> dict[str, Any]:
    """Each evaluated metric at best.pt's evaluation (the one selected on validation, else the last)."""
    if sel is None:
        return {}
    out = {}
    for name in EVAL_METRICS:
        value = dict(raw.get(name, ())).get(sel.step)
        if value is not None:
            out[name] = {"value": value, "step": sel.step, "mode": "best.pt"}
    return out


def _series(run: Run, order: list[str], max_points: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, list]]:
    """(downsampled series of the charted metrics, the peak of each accuracy and loss, the raw points)."""
    names = set(order)
    wanted = [n for n in SERIES if n in names] + [n for n in order if n.startswith(("lr/", "system/gpu"))]
    raw = {n: [(int(s), finite(v)) for s, v in run.series(n)] for n in wanted}
    series = {n: {"step": [p[0] for p in pts], "value": [p[1] for p in pts]}
              for n, pts in ((n, downsample(raw[n], max_points)) for n in wanted)}
    peak = {}
    for n in PEAK_MAX + PEAK_MIN:
        if n in raw and (b := _peak(raw[n], "max" if n in PEAK_MAX else "min")):
            peak[n] = b
    return series, peak, raw


def _run_info(run: Run, state: str, now: float) -> dict[str, Any]:
    meta = run.meta()
    error = meta.get("error") or ""
    if state == "crashed" and meta.get("state") in ACTIVE_STATES:  # read as crashed, not (yet) recorded
        error = WORKER_GONE
    step = run.last_step()
    total = int(meta.get("total_steps") or 0)
    spe = int(meta.get("steps_per_epoch") or 0)
    started, ended = finite(meta.get("started")), finite(meta.get("ended"))
    active = state in ACTIVE_STATES
    end_ts = ended if ended is not None else (now if active else None)
    return {
        "run_id": meta.get("run_id") or run.run_id, "name": meta.get("name", ""), "preset": meta.get("preset", ""),
        "state": shown_state(state, meta, now), "active": active, "path": str(run.path.resolve()), "host": meta.get("host", ""),
        "device": meta.get("device", ""),
        "runtime": meta.get("runtime") if isinstance(meta.get("runtime"), dict) else None, "torch_version": meta.get("torch_version", ""),
        "created": finite(meta.get("created")), "started": started, "ended": ended,
        "duration_s": end_ts - started if started is not None and end_ts is not None else None,
        "step": step, "total_steps": total, "steps_per_epoch": spe, "epochs": int(meta.get("epochs") or 0),
        "epoch": (step / spe) if spe else None, "progress": min(step / total, 1.0) if total else None,
        "error": error,
    }


def _results(run: Run) -> tuple[dict[str, StoredResult], dict[str, Any]]:
    """(the latest stored result of each kind, the results section): a later pass supersedes an earlier one."""
    latest = {row.kind: row for row in run.results()}
    as_json = {k: clean(r.data.model_dump()) | {"_step": r.step, "_checkpoint": r.checkpoint, "_wall": r.wall}
               for k, r in latest.items()}
    results: dict[str, Any] = {k: as_json.get(k) for k in RESULT_KINDS}
    results["other"] = {k: v for k, v in as_json.items() if k not in RESULT_KINDS}
    return latest, results


def _events(run: Run, spe: int) -> list[dict[str, Any]]:
    events = []
    for e in run.events_since(0):
        try:
            data = json.loads(e["data"] or "{}")
        except ValueError:
            data = {}
        marker = e["kind"] in STEERING_KINDS or e["kind"] in END_KINDS or e["level"] in ALARM_LEVELS
        events.append({"id": e["id"], "wall": e["wall"], "step": e["step"], "epoch": (e["step"] / spe) if spe else None,
                       "kind": e["kind"], "level": e["level"], "message": e["message"], "data": clean(data),
                       "marker": marker})
    return events


def _difficulty(run: Run, order: list[str], series: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    hist_names = sorted(n for n in order if re.fullmatch(r"difficulty/hist/\d+", n))
    return {
        "quantiles": [q for q in ("p10", "p50", "p90", "max") if f"difficulty/{q}" in series],
        "hist": [last.get(n) for n in hist_names],
        "hist_edges": HIST_EDGES[:len(hist_names) + 1] if len(hist_names) + 1 <= len(HIST_EDGES) else [],
        "hist_step": max((s for s, _ in run.series(hist_names[0])), default=None) if hist_names else None,
    }


def _against(run: Run, spec: Any, spec_error: str | None, against: Run) -> dict[str, Any]:
    """The spec diff against another run (or why there is none), and what was done to that run."""
    info = {"run_id": against.run_id, "path": str(against.path.resolve()), "diff": [], "error": "",
            "interventions": interventions(against.events_since(0), int(against.meta().get("steps_per_epoch") or 0))}
    try:
        other_spec = against.spec()
        if spec is None:
            raise SpecError([("spec.toml", spec_error or "unreadable")], str(run.path))
        info["diff"] = [{"key": k, "this": clean(a), "other": clean(b)} for k, a, b in diff_specs(spec, other_spec)]
    except (OSError, SpecError) as exc:
        info["error"] = str(exc).splitlines()[0]
    return info


def _notes(state: str, series: dict, results: dict, difficulty: dict, names: list[str]) -> dict[str, str]:
    """Why a section is empty, by section id (a report shows the note instead of the section)."""
    notes: dict[str, str] = {}
    if not names:
        notes["metrics"] = "no metrics recorded yet" + (" (the run is still starting)" if state in ACTIVE_STATES else "")
    if not any(results.get(k) for k in ("swa", "calibrate", "tta", "ensemble")):
        notes["finishing"] = "no finishing passes were run (SWA, calibration, TTA, ensemble)"
    if not results.get("calibrate"):
        notes["calibration"] = "not calibrated: no calibration result in the store (evaluate.calibrate, or the calibrate finishing pass)"
    if not results.get("confusion"):
        notes["classes"] = "no confusion matrix recorded for this run"
    if not difficulty["quantiles"] and not any(v is not None for v in difficulty["hist"]):
        notes["difficulty"] = "no sample-difficulty measurements (monitor.difficulty_every)"
    if not any(n in series for n in ("images_per_s", "step_time_ms", "data_time_ms")):
        notes["throughput"] = "no throughput measurements yet"
    if not results.get("hardest"):
        notes["hardest"] = "no hardest-examples pass recorded"
    if not any(n.startswith(("grad_norm/", "update_ratio/", "act/mean/", "act/dead/")) for n in names):
        notes["layers"] = "no per-layer instruments recorded (monitor.grad_flow_every, monitor.activations_every)"
    return notes
