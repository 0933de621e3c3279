"""The report summary's shape, typed: what `summarize()` returns and `report.json` holds (schema_version 1).

Each key carries its meaning (`Annotated[type, "meaning"]`), and docs/report-schema.md's tables are
generated from these types: `python -m cockpit.report.write_schema_doc` rewrites them, and a test fails
when the doc and the types drift. Keys may be added in a later schema version, never removed or renamed.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, TypedDict, Union, get_args, get_origin, get_type_hints

class RunInfo(TypedDict):
    run_id: Annotated[str, "the run id (`20261127-231900-sgd_cosine`)"]
    name: Annotated[str, "the spec's name"]
    preset: Annotated[str, "the preset it came from (path or name)"]
    state: Annotated[str, "created, running, paused, finished, stopped, failed or crashed"]
    active: Annotated[bool, "true while created / running / paused"]
    path: Annotated[str, "absolute path of the run dir"]
    host: Annotated[str, "host the run was created on"]
    device: Annotated[str, "GPU name, or `CPU (n cores, m threads)`"]
    runtime: Annotated[dict[str, Any] | None, "what actually ran (meta `runtime`): `{device, precision, compile, memory_format, torch, cuda, cudnn}`, `device` the torch device (`cuda:0`), `precision` `fp32`, `bf16 autocast` or `fp16 autocast + GradScaler` (the spec's `auto` resolved), `compile` `off` or `torch.compile (mode default)`, `memory_format` `channels_last` or `contiguous`, `cuda`/`cudnn` null where unused; null before the worker started or for a run an older cockpit trained"]
    torch_version: Annotated[str, "torch version of the worker (empty before it started)"]
    created: Annotated[float | None, "run dir created"]
    started: Annotated[float | None, "worker started"]
    ended: Annotated[float | None, "run ended (null while active)"]
    duration_s: Annotated[float | None, "ended − started; for an active run, now − started"]
    step: Annotated[int, "last step with metrics"]
    total_steps: Annotated[int, "planned steps (0 if not known yet)"]
    steps_per_epoch: Annotated[int, "steps per epoch (0 if not known yet)"]
    epochs: Annotated[int, "planned epochs"]
    epoch: Annotated[float | None, "`step / steps_per_epoch`"]
    progress: Annotated[float | None, "`step / total_steps`, at most 1"]
    error: Annotated[str, "why it failed / crashed / stopped early, else empty"]


class Against(TypedDict):
    run_id: Annotated[str, "the other run"]
    path: Annotated[str, "its run dir"]
    diff: Annotated[list[Any], "`{key, this, other}` for every spec leaf that differs; `key` is the dotted path (`optim.lr`)"]
    error: Annotated[str, "why the specs could not be compared, else empty"]
    interventions: Annotated[list[Any], "what was done to the other run beyond its spec, as `interventions[]` below"]


class Metrics(TypedDict):
    final: Annotated[dict[str, Any], "metric name → its last value, for every metric in the run"]
    best: Annotated[dict[str, Any], "the evaluated metrics (`test_acc`, `test_loss`, `val_acc`, `val_loss`) at `best.pt`'s evaluation: name → `{value, step, mode: \"best.pt\"}`; empty before the first evaluation. \"Best\" is always `best.pt`'s figure, chosen on validation, never the highest test figure"]
    peak: Annotated[dict[str, Any], "for accuracies (max) and losses (min): name → `{value, step, mode}`, the extreme ever measured; shown for reference, it chose nothing (a test peak is not a result: picking it would be peeking at the test set)"]
    names: Annotated[list[Any], "every metric name, in the order the worker first wrote it"]
    selected: Annotated[dict[str, Any] | None, "the evaluation `best.pt` holds: `{step, test_acc, val_acc, basis, says}`; `basis` is `val_acc` (the first highest validation accuracy) or `last epoch` (no validation split: the last evaluation, never chosen on the test set)"]


FinishingRow = TypedDict("FinishingRow", {
    "pass": Annotated[str, "`base`, `swa`, `calibrated`, `tta` or `ensemble`"],
    "model": Annotated[str, "the model measured, checkpoint and step: `final model · step 420`, `best.pt · step 196`, `3 runs' best.pt`"],
    "acc": Annotated[float | None, "test accuracy (TTA over several draws: their mean)"],
    "acc_std": Annotated[float | None, "the sample std (n − 1) of `acc` over TTA's draws (`cockpit tta --draws N`); null for one draw and every other pass"],
    "loss": Annotated[float | None, "test loss (NLL for the calibrated row)"],
    "ece": Annotated[float | None, "expected calibration error, where known"],
    "delta_acc": Annotated[float | None, "acc − baseline acc (a fraction: 0.011 is +1.1 pp)"],
    "delta_loss": Annotated[float | None, "loss − baseline loss"],
    "baseline": Annotated[str | None, "what the deltas are against: `best.pt before scaling`, `the best member (run-id)`, `base (final model · step 420)`"],
    "detail": Annotated[str, "e.g. `temperature 1.52, ECE before 4.10%`, `3 views: identity, flip, translate (logits), no random views`, `5 views: random1, ... (logits), mean ± sample std over 5 draws, seeds 0-4`, `5 members, mean probability`"],
})


class Results(TypedDict):
    hardest: Annotated[dict[str, Any] | None, "`{examples: [{index, label, pred, loss, thumb}], classes}`: the highest-loss test images (the first 8 with `thumb`, a 16x16 RGB thumbnail as base64 of its row-major bytes; `classes` names the labels)"]
    swa: Annotated[dict[str, Any] | None, "`{test_acc, test_loss}` of the SWA model (the SWA pass adds `base_acc`, `base_loss`, `swa_acc`, `delta`, `epochs`, ...)"]
    calibrate: Annotated[dict[str, Any] | None, "`{before: {nll, ece, acc}, after: {...}, temperature, method (\"log_t\" or \"guide\": how T was fitted), reliability: {before: [{lower, upper, conf, acc, count}], after: [...]}}` (conf and acc null for an empty bin)"]
    tta: Annotated[dict[str, Any] | None, "`{base_acc, base_loss, tta_acc, tta_loss, delta, ece, views: {name: acc}, combine, n_views, random_views, seed, draws, draw_seeds, draw_accs, tta_acc_std}`: over several draws of the random views (seeds `draw_seeds`) the figures are means, `tta_acc_std` the sample std of `draw_accs`"]
    ensemble: Annotated[dict[str, Any] | None, "`{members: [{run, acc, nll}], acc, nll, vote_acc, mean_prob_acc, best_member_acc, gain, ...}`"]
    confusion: Annotated[dict[str, Any] | None, "`{matrix: [[count]] (rows true, columns predicted), classes: [name], per_class_acc: [acc]}`"]
    other: Annotated[dict[str, Any], "results of any other kind (e.g. `lr_find`): kind → its latest payload"]


class Difficulty(TypedDict):
    quantiles: Annotated[list[Any], "which of `p10`, `p50`, `p90`, `max` exist as `series[\"difficulty/<q>\"]`"]
    hist: Annotated[list[Any], "the latest per-sample loss histogram: share of the batch in each bin"]
    hist_edges: Annotated[list[Any], "bin edges of the histogram (loss 0, 0.5, ... 5; the last bin takes the overflow)"]
    hist_step: Annotated[int | None, "the step of that histogram"]


class Event(TypedDict):
    id: Annotated[int, "row id in `run.db` (increasing)"]
    wall: Annotated[float, "when (unix seconds)"]
    step: Annotated[int, "the step it happened at"]
    epoch: Annotated[float | None, "step / steps_per_epoch"]
    kind: Annotated[str, "started, finished, stopped, failed, crashed, paused, continued, set_lr, swa_started, swa_finished, checkpoint, nonfinite, grad_spike, dead_units, ..."]
    level: Annotated[str, "info, warning or error"]
    message: Annotated[str, "what a person reads"]
    data: Annotated[dict[str, Any], "the event's extra fields (e.g. set_lr: `{lr, layer, mult}`)"]
    marker: Annotated[bool, "drawn on the charts' timeline: steering actions (set_lr, pause, continue, SWA, checkpoint, resume from a checkpoint), alarms (warning / error) and abnormal ends"]


class Intervention(TypedDict):
    step: Annotated[int, "the step it happened at"]
    epoch: Annotated[float | None, "step / steps_per_epoch"]
    action: Annotated[str, "set-lr, pause, continue, swa (SWA started by command), pass (a finishing pass), stop, resume"]
    detail: Annotated[str, "what was done: `base LR 0.2` (the value set live), `layer stem multiplier 0.5`, `SWA LR 0.05`, `training continued after 12s paused`, `TTA on the live model`, `calibration on best.pt`, `stopped: cockpit stop`"]


class Summary(TypedDict):
    schema_version: Annotated[int, "`1`"]
    generated: Annotated[float, "when this summary was made (unix seconds)"]
    cockpit_version: Annotated[str, "Training Cockpit version that made it"]
    run: Annotated[RunInfo, "identity, state and timing of the run (below)"]
    spec: Annotated[dict[str, Any] | None, "the resolved run spec (as `spec.toml`, as a nested object); null when spec.toml does not validate"]
    spec_toml: Annotated[str, "the spec as TOML, exactly as `dump_spec` writes it (the raw file when it does not validate)"]
    spec_error: Annotated[str | None, "why spec.toml did not validate, else null"]
    against: Annotated[Against | None, "the spec diff against another run (`--against`), else null"]
    metrics: Annotated[Metrics, "final and best values (below)"]
    finishing: Annotated[list[FinishingRow], "the finishing-pass rows side by side: base, swa, calibrated, tta, ensemble (those that ran)"]
    results: Annotated[Results, "the latest result of each kind (below)"]
    series: Annotated[dict[str, Any], "curves over steps, downsampled (below)"]
    difficulty: Annotated[Difficulty, "sample-difficulty quantiles and the latest per-sample loss histogram"]
    layers: Annotated[list[Any], "per-layer instruments, last values, one object per block / param group"]
    events: Annotated[list[Event], "every event in the run, in order (below)"]
    interventions: Annotated[list[Intervention], "what was done to the run beyond its spec, read from its events, in order (below): two runs with one differing spec field may have been trained very differently"]
    notes: Annotated[dict[str, Any], "section id → why that section is empty (e.g. `\"calibration\": \"not calibrated: ...\"`)"]


# (group, its TypedDict) in the doc's order; "" is the top level, "finishing" and "events" are lists of rows
GROUPS: dict[str, Any] = {"": Summary, "run": RunInfo, "against": Against, "metrics": Metrics,
                          "finishing": FinishingRow, "results": Results, "difficulty": Difficulty, "events": Event,
                          "interventions": Intervention}
ROW_GROUPS = ("finishing", "events", "interventions")  # documented as `group[].key`


def keys(td: Any) -> tuple[str, ...]:
    return tuple(td.__annotations__)


# Top-level keys and the keys of each object below them (tests check every report against these)
SCHEMA: dict[str, tuple[str, ...]] = {group: keys(td) for group, td in GROUPS.items()}


def _type_name(t: Any) -> str:
    """The doc's word for a type: str, int, float, bool, list, object; `X \\| null` when it may be null."""
    if get_origin(t) in (Union, types.UnionType):
        args = [a for a in get_args(t) if a is not type(None)]
        return " \\| ".join([_type_name(a) for a in args] + ["null"] * (len(args) < len(get_args(t))))
    origin = get_origin(t) or t
    if origin in (list, tuple):
        return "list"
    if origin is dict or isinstance(t, type) and issubclass(t, dict):
        return "object"
    return getattr(t, "__name__", str(t))


def table(group: str) -> str:
    """The Markdown table of one group, from its TypedDict."""
    hints = get_type_hints(GROUPS[group], include_extras=True)
    prefix = f"{group}[]." if group in ROW_GROUPS else f"{group}." if group else ""
    lines = ["| key | type | meaning |", "| --- | --- | --- |"]
    for key, hint in hints.items():
        t, meaning = get_args(hint)[:2]
        lines.append(f"| `{prefix}{key}` | {_type_name(t)} | {meaning} |")
    return "\n".join(lines)


TABLE = re.compile(r"(<!-- schema: (?P<group>[a-z]*) -->\n).*?(\n<!-- /schema -->)", re.S)


def render_doc(text: str) -> str:
    """The doc with every table between its `<!-- schema: GROUP -->` markers regenerated."""
    return TABLE.sub(lambda m: m.group(1) + table(m["group"]) + m.group(3), text)
