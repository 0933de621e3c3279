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
from typing import Any

from engine.spec import SpecError, diff_specs, dump_spec, spec_to_dict
from engine.store import ACTIVE_STATES, WORKER_GONE, Run

from cockpit import __version__

SCHEMA_VERSION = 1
MAX_POINTS = 500  # per series, for charts and the JSON

# Top-level keys and the keys of each object below them: the documented schema (the doc and a test
# check against these). Keys may be added in a later schema version, never removed or renamed.
SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("schema_version", "generated", "cockpit_version", "run", "spec", "spec_toml", "spec_error",
         "against", "metrics", "finishing", "results", "series", "difficulty", "layers", "events",
         "notes"),
    "run": ("run_id", "name", "preset", "state", "active", "path", "host", "device", "torch_version",
            "created", "started", "ended", "duration_s", "step", "total_steps", "steps_per_epoch",
            "epochs", "epoch", "progress", "error"),
    "against": ("run_id", "path", "diff", "error"),
    "metrics": ("final", "best", "names"),
    "finishing": ("pass", "acc", "loss", "ece", "delta_acc", "delta_loss", "detail"),
    "results": ("hardest", "swa", "calibrate", "tta", "ensemble", "confusion", "other"),
    "difficulty": ("quantiles", "hist", "hist_edges", "hist_step"),
    "events": ("id", "wall", "step", "epoch", "kind", "level", "message", "data", "marker"),
}

# series kept in the summary (downsampled); lr/<layer> are added when present
SERIES = (
    "train_loss", "test_loss", "val_loss", "swa_test_loss",
    "train_acc", "test_acc", "val_acc", "swa_test_acc",
    "lr", "grad_norm", "grad_norm_max", "act/saturation", "act/dead",
    "difficulty/p10", "difficulty/p50", "difficulty/p90", "difficulty/max",
    "images_per_s", "step_time_ms", "data_time_ms", "memory_gb", "loss_scale", "skipped_steps",
)
# metrics with a "best": accuracies are maximised, losses minimised
BEST_MAX = ("train_acc", "test_acc", "val_acc", "swa_test_acc")
BEST_MIN = ("train_loss", "test_loss", "val_loss", "swa_test_loss")

# events drawn on the timeline of every step chart (steering actions and alarms); others only listed
STEERING_KINDS = ("set_lr", "paused", "resumed", "swa_started", "swa_finished", "checkpoint", "resumed_run")
END_KINDS = ("stopped", "failed", "crashed")
ALARM_LEVELS = ("warning", "error")

RESULT_KINDS = ("hardest", "swa", "calibrate", "tta", "ensemble", "confusion")
HIST_EDGES = [round(0.5 * i, 1) for i in range(11)]  # per-sample loss histogram (last bin takes the overflow)


def finite(v: Any) -> float | None:
    """A JSON-safe number: NaN and infinities become None."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


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
    """At most ~max_points points, keeping each bucket's min and max (spikes survive, shape holds)."""
    if len(points) <= max_points:
        return list(points)
    buckets = max(max_points // 2, 1)
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
    return out


def _best(points: list[tuple[int, float | None]], mode: str) -> dict[str, Any] | None:
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
            "act/dead/": "act_dead", "act/saturation/": "act_saturation"}
    rows: dict[str, dict[str, Any]] = {}
    for name in order:
        for prefix, col in cols.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                layer = name[len(prefix):]
                rows.setdefault(layer, {"name": layer})[col] = last.get(name)
    return list(rows.values())


def _with_ckpt(detail: str, result: dict[str, Any]) -> str:
    ck = result.get("_checkpoint")
    return f"{detail} · {ck}" if ck else detail


def _finishing(final: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    """The finishing-pass rows side by side: base, SWA, calibrated, TTA, ensemble.

    Deltas are against the pass's own baseline when it measured one on the same checkpoint
    (swa.base_acc, calibrate.before, tta.base_acc), else against the base row (the final model).
    """
    cal, tta, swa, ens = (results.get(k) for k in ("calibrate", "tta", "swa", "ensemble"))
    before = (cal.get("before") or {}) if cal else {}
    base_acc = final.get("test_acc")
    for fallback in ((tta or {}).get("base_acc"), before.get("acc"), (swa or {}).get("base_acc")):
        if base_acc is None:
            base_acc = finite(fallback)
    base_loss = final.get("test_loss")
    if base_loss is None:
        base_loss = finite((tta or {}).get("base_loss")) or finite(before.get("nll"))
    rows: list[dict[str, Any]] = []
    if base_acc is not None or base_loss is not None:
        rows.append({"pass": "base", "acc": base_acc, "loss": base_loss, "ece": finite(before.get("ece")),
                     "detail": "final model", "_ref": (None, None)})
    if swa:
        epochs = swa.get("epochs")
        detail = (f"averaged weights, {epochs} epoch{'' if epochs == 1 else 's'}" if isinstance(epochs, int)
                  else "averaged weights")
        rows.append({"pass": "swa", "acc": finite(swa.get("test_acc", swa.get("swa_acc"))),
                     "loss": finite(swa.get("test_loss")), "ece": None, "detail": _with_ckpt(detail, swa),
                     "_ref": (finite(swa.get("base_acc")), finite(swa.get("base_loss")))})
    if cal:
        after = cal.get("after") or {}
        t = finite(cal.get("temperature"))
        rows.append({"pass": "calibrated", "acc": finite(after.get("acc")), "loss": finite(after.get("nll")),
                     "ece": finite(after.get("ece")),
                     "detail": _with_ckpt(f"temperature {t:.3g}" if t is not None else "temperature scaling", cal),
                     "_ref": (finite(before.get("acc")), finite(before.get("nll")))})
    if tta:
        views = tta.get("views") or {}
        n = tta.get("n_views") or len(views)
        detail = f"{n} views: {', '.join(map(str, views))}" if views else f"{n} views"
        if tta.get("combine"):
            detail += f" ({tta['combine']})"
        rows.append({"pass": "tta", "acc": finite(tta.get("tta_acc")), "loss": finite(tta.get("tta_loss")),
                     "ece": finite(tta.get("ece")), "detail": _with_ckpt(detail, tta),
                     "_ref": (finite(tta.get("base_acc")), finite(tta.get("base_loss")))})
    if ens:
        acc = next((finite(ens[k]) for k in ("acc", "mean_prob_acc", "ensemble_acc", "test_acc") if k in ens), None)
        loss = next((finite(ens[k]) for k in ("nll", "loss", "ensemble_loss", "test_loss") if k in ens), None)
        members = ens.get("members") or ens.get("runs") or []
        detail = f"{len(members)} members" if members else "ensemble"
        if finite(ens.get("best_member_acc")) is not None:
            detail += f", best member {ens['best_member_acc']:.2%}"
        rows.append({"pass": "ensemble", "acc": acc, "loss": loss, "ece": finite(ens.get("ece")), "detail": detail,
                     "_ref": (None, None)})
    base = rows[0] if rows and rows[0]["pass"] == "base" else None
    for r in rows:
        ref_acc, ref_loss = r["_ref"]
        if r is not base and base is not None:
            ref_acc = base["acc"] if ref_acc is None else ref_acc
            ref_loss = base["loss"] if ref_loss is None else ref_loss
        r["delta_acc"] = r["acc"] - ref_acc if r is not base and r["acc"] is not None and ref_acc is not None else None
        r["delta_loss"] = r["loss"] - ref_loss if r is not base and r["loss"] is not None and ref_loss is not None else None
    return [{k: r.get(k) for k in SCHEMA["finishing"]} for r in rows]


def _spec(run: Run) -> tuple[Any, dict[str, Any] | None, str, str | None]:
    """(RunSpec or None, spec dict, TOML text, error)."""
    path = run.path / "spec.toml"
    try:
        spec = run.spec()
    except (OSError, SpecError) as exc:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        return None, None, text, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return spec, spec_to_dict(spec), dump_spec(spec), None


def summarize(run: Run, against: Run | None = None, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Everything a report shows, as plain JSON-ready data (schema_version 1)."""
    state = run.observed_state()  # a run whose worker is gone reads as crashed (nothing is written)
    meta = run.meta()
    if state == "crashed" and meta.get("state") in ACTIVE_STATES:
        meta["error"] = WORKER_GONE
    now = time.time()
    spec, spec_dict, spec_toml, spec_error = _spec(run)

    order = run.metric_names_by_first_write()
    last = {k: finite(v) for k, v in run.last_values().items()}
    names = set(order)
    wanted = [n for n in SERIES if n in names] + [n for n in order if n.startswith("lr/")]
    raw = {n: [(int(s), finite(v)) for s, v in run.series(n)] for n in wanted}
    series = {n: {"step": [p[0] for p in pts], "value": [p[1] for p in pts]}
              for n, pts in ((n, downsample(raw[n], max_points)) for n in wanted)}
    best = {}
    for n in BEST_MAX + BEST_MIN:
        if n in raw and (b := _best(raw[n], "max" if n in BEST_MAX else "min")):
            best[n] = b

    step = run.last_step()
    total = int(meta.get("total_steps") or 0)
    spe = int(meta.get("steps_per_epoch") or 0)
    started, ended = finite(meta.get("started")), finite(meta.get("ended"))
    active = state in ACTIVE_STATES
    end_ts = ended if ended is not None else (now if active else None)
    duration = end_ts - started if started is not None and end_ts is not None else None
    run_info = {
        "run_id": meta.get("run_id") or run.run_id, "name": meta.get("name", ""), "preset": meta.get("preset", ""),
        "state": state, "active": active, "path": str(run.path.resolve()), "host": meta.get("host", ""),
        "device": meta.get("device", ""), "torch_version": meta.get("torch_version", ""),
        "created": finite(meta.get("created")), "started": started, "ended": ended, "duration_s": duration,
        "step": step, "total_steps": total, "steps_per_epoch": spe, "epochs": int(meta.get("epochs") or 0),
        "epoch": (step / spe) if spe else None, "progress": min(step / total, 1.0) if total else None,
        "error": meta.get("error") or "",
    }

    # results: the latest of each kind (a later pass supersedes an earlier one)
    results: dict[str, Any] = {k: None for k in RESULT_KINDS}
    other: dict[str, Any] = {}
    for row in run.results():
        entry = clean(row.data.model_dump()) | {"_step": row.step, "_checkpoint": row.checkpoint, "_wall": row.wall}
        (results if row.kind in RESULT_KINDS else other)[row.kind] = entry
    results["other"] = other

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

    hist_names = sorted(n for n in names if re.fullmatch(r"difficulty/hist/\d+", n))
    hist_step = None
    if hist_names:
        row = run.con.execute("SELECT MAX(step) FROM metrics WHERE name = ?", (hist_names[0],)).fetchone()
        hist_step = row[0]
    difficulty = {
        "quantiles": [q for q in ("p10", "p50", "p90", "max") if f"difficulty/{q}" in series],
        "hist": [last.get(n) for n in hist_names],
        "hist_edges": HIST_EDGES[:len(hist_names) + 1] if len(hist_names) + 1 <= len(HIST_EDGES) else [],
        "hist_step": hist_step,
    }

    against_info = None
    if against is not None:
        against_info = {"run_id": against.run_id, "path": str(against.path.resolve()), "diff": [], "error": ""}
        try:
            other_spec = against.spec()
            if spec is None:
                raise SpecError([("spec.toml", spec_error or "unreadable")], str(run.path))
            against_info["diff"] = [{"key": k, "this": clean(a), "other": clean(b)} for k, a, b in diff_specs(spec, other_spec)]
        except (OSError, SpecError) as exc:
            against_info["error"] = str(exc).splitlines()[0]

    final_results = {k: results[k] for k in RESULT_KINDS}
    summary = {
        "schema_version": SCHEMA_VERSION,
        "generated": now,
        "cockpit_version": __version__,
        "run": run_info,
        "spec": spec_dict,
        "spec_toml": spec_toml,
        "spec_error": spec_error,
        "against": against_info,
        "metrics": {"final": last, "best": best, "names": order},
        "finishing": _finishing(last, final_results),
        "results": results,
        "series": series,
        "difficulty": difficulty,
        "layers": _layers(order, last),
        "events": events,
        "notes": _notes(state, series, results, difficulty, order),
    }
    return clean(summary)


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
