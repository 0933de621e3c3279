"""A sweep's results, recomputed from its trials' run stores alone (no Optuna, no torch).

Each trial is an ordinary run whose meta names its sweep (`sweep`, `sweep_config`, `sweep_seed`,
`sweep_trial`, and `sweep_outcome` when the sweep ended it: pruned or interrupted). A configuration's
row: mean ± std of the final test accuracy over its finished seeds (the SWA model's where the run
averaged weights), the best seed, epochs and wall time to the sweep's target accuracy, images/s,
and how many of its trials ended in each state. The views (CLI, report, TUI) all read this.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..contracts import EnsembleResult
from ..store import Run, iter_runs
from .config import Ensemble, SweepFile, from_json
from .ledger import entries

SWEEP_JSON = "sweep.json"


@dataclass
class TrialRow:
    run_id: str
    config: str
    seed: int
    trial: int | None
    state: str  # the run's state, or the sweep's outcome for it (pruned, interrupted)
    acc: float | None  # final test accuracy (SWA model's if any)
    epochs: float  # epochs trained
    epochs_total: int  # epochs the run is set to train (0 before its worker says)
    epochs_to_target: float | None
    time_to_target: float | None  # seconds from the run's creation
    images_per_s: float | None
    curve: list[tuple[float, float]] = field(default_factory=list)  # (epoch, test_acc)


@dataclass
class ConfigRow:
    config: str
    guide: float | None
    n: int  # finished seeds
    mean: float | None
    std: float | None
    best_seed: int | None
    best_acc: float | None
    reached: int  # finished seeds that reached the target
    epochs_to_target: float | None  # mean over those that reached it
    time_to_target: float | None
    images_per_s: float | None
    states: dict[str, int]


@dataclass
class EnsembleRow:
    """An ensemble's figures, each the mean (and sample std) over its evaluations: one per seed (the
    members' runs of that seed), or one over every seed's run of one variant (`across_seeds`)."""
    name: str
    members: list[str]
    n: int  # evaluations
    size: int  # runs in each evaluation
    across_seeds: bool
    mean: float | None  # mean-probability accuracy
    std: float | None
    gain: float | None  # mean-probability accuracy minus the best member's
    mode_vote: float | None  # the guide's torch.mode vote (a tie to the lowest class)
    mode_vote_std: float | None
    mode_vote_gain: float | None  # what the guide's claimed gain measures: compare these two
    vote: float | None  # majority vote, a tie to the highest mean probability
    vote_gain: float | None
    guide_gain: float | None  # the guide's claim: a torch.mode vote's gain


@dataclass
class SweepTable:
    name: str
    kind: str
    target: float
    configs: list[ConfigRow]
    trials: list[TrialRow]
    ensembles: list[EnsembleRow]

    @property
    def states(self) -> dict[str, int]:
        return dict(Counter(t.state for t in self.trials))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "states": self.states}


def read_sweep(runs_dir: Path, name: str) -> SweepFile | None:
    """The sweep as stored beside its runs (runs/sweeps/<name>/sweep.json), or None."""
    p = Path(runs_dir) / "sweeps" / name / SWEEP_JSON
    return from_json(p.read_text(encoding="utf-8"))[0] if p.is_file() else None


def final_acc(run: Run) -> float | None:
    """The run's final test accuracy: the SWA model's where it has one, else the last evaluation's."""
    return _final(run, "test")


def final_checkpoint(run: Run) -> str:
    """The checkpoint holding the model `final_acc` measured: the SWA model where the run averaged
    weights, else the final one (last.pt). A sweep's ensembles use it, so that an ensemble's members
    are the models its configuration rows report."""
    return "swa" if run.series("swa_test_acc") else "last"


def final_val_acc(run: Run) -> float | None:
    """The run's final validation accuracy (a sweep trial's value for Optuna), chosen as `final_acc`
    is; None without a split."""
    return _final(run, "val")


def _final(run: Run, split: str) -> float | None:
    for name in (f"swa_{split}_acc", f"{split}_acc"):
        series = run.series(name)
        if series:
            return series[-1][1]
    return None


def trial_row(run: Run, target: float) -> TrialRow:
    meta = run.meta()
    rows = [(epoch, value, wall) for _, epoch, value, wall in run.evaluations("test_acc")]
    hit = next((r for r in rows if r[1] is not None and r[1] >= target), None)
    ips = [v for _, v in run.series("images_per_s") if v is not None and math.isfinite(v)]
    epochs = run.last_epoch()
    state = meta.get("sweep_outcome") or run.shown_state()  # a silent live trial: `not responding`
    return TrialRow(
        run_id=run.run_id, config=str(meta.get("sweep_config", "")), seed=int(meta.get("sweep_seed", 0)),
        trial=meta.get("sweep_trial"), state=state, acc=final_acc(run), epochs=round(float(epochs), 3),
        epochs_total=int(meta.get("epochs") or 0),
        epochs_to_target=round(hit[0], 3) if hit else None,
        time_to_target=round(hit[2] - float(meta.get("created", hit[2])), 2) if hit else None,
        images_per_s=statistics.fmean(ips) if ips else None,
        curve=[(round(r[0], 3), r[1]) for r in rows if r[1] is not None])


MISSING = "run dir missing"  # a trial this machine started whose run dir is gone
UNREADABLE = "unreadable"  # its run dir is there, its run.db cannot be read
DUPLICATE = "duplicate"  # another finished run of a (configuration, seed) already counted
SUPERSEDED = "superseded"  # an unfinished run of a (configuration, seed) that a later run took over


def once_per_seed(trials: list[TrialRow]) -> list[TrialRow]:
    """Each (configuration, seed) counted once: its first finished run, else its newest run (run ids
    sort by time); any other run of it is shown as a duplicate (finished) or superseded, never averaged in."""
    by_key: dict[tuple[str, int], list[TrialRow]] = {}
    for t in sorted(trials, key=lambda t: t.run_id):
        by_key.setdefault((t.config, t.seed), []).append(t)
    for group in by_key.values():
        counted = next((t for t in group if t.state == "finished"), group[-1])
        for t in group:
            if t is not counted:
                t.state = DUPLICATE if t.state == "finished" else SUPERSEDED
    return trials


def missing_rows(runs_dir: Path, name: str, present: set[str]) -> list[TrialRow]:
    """A row for each run the sweep's ledger names whose run dir is gone."""
    out: dict[str, TrialRow] = {}
    for e in entries(Path(runs_dir) / "sweeps" / name):
        if e.run_id not in present and e.run_id not in out:
            state = UNREADABLE if (Path(runs_dir) / e.run_id).is_dir() else MISSING
            out[e.run_id] = TrialRow(e.run_id, e.config, e.seed, e.trial, state, None, 0.0, 0, None, None, None)
    return list(out.values())


def sweep_runs(runs_dir: Path, name: str) -> list[Run]:
    """The runs of sweep `name` in runs_dir (read-only), oldest first."""
    out = []
    for run in iter_runs(runs_dir, readonly=True):
        try:
            if run.meta().get("sweep") == name:
                out.append(run)
                continue
        except Exception:  # a damaged store never hides the others
            pass
        run.close()
    return out


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def config_row(config: str, trials: list[TrialRow], guide: float | None) -> ConfigRow:
    done = [t for t in trials if t.state == "finished" and t.acc is not None]
    mean, std = _mean_std([t.acc for t in done])
    best = max(done, key=lambda t: t.acc, default=None)
    reached = [t for t in done if t.epochs_to_target is not None]
    ips = [t.images_per_s for t in trials if t.images_per_s is not None]
    return ConfigRow(
        config=config, guide=guide, n=len(done), mean=mean, std=std,
        best_seed=best.seed if best else None, best_acc=best.acc if best else None, reached=len(reached),
        epochs_to_target=statistics.fmean([t.epochs_to_target for t in reached]) if reached else None,
        time_to_target=statistics.fmean([t.time_to_target for t in reached]) if reached else None,
        images_per_s=statistics.fmean(ips) if ips else None, states=dict(Counter(t.state for t in trials)))


def ensemble_groups(sweep: SweepFile, ens: Ensemble, finished: dict[tuple[str, int], str]) -> list[list[str]]:
    """The run ids each evaluation of `ens` ensembles: the members' runs of each seed, or one
    variant's runs over all seeds; only groups whose runs have all finished."""
    if ens.across_seeds:
        groups = [[finished.get((ens.members[0], s), "") for s in sweep.seeds]]
    else:
        groups = [[finished.get((m, s), "") for m in ens.members] for s in sweep.seeds]
    return [g for g in groups if all(g)]


def stored_ensemble(first: Run, ids: list[str], checkpoints: list[str]) -> EnsembleResult | None:
    """The latest ensemble result stored in `first` of exactly these runs and checkpoint kinds."""
    for stored in reversed(first.results("ensemble")):
        data = stored.data
        if (isinstance(data, EnsembleResult) and [m.run for m in data.members] == ids
                and [c.split(".")[0] for c in data.checkpoints] == checkpoints):
            return data
    return None


def _ensemble_rows(sweep: SweepFile, runs: dict[str, Run], trials: list[TrialRow]) -> list[EnsembleRow]:
    out = []
    finished = {(t.config, t.seed): t.run_id for t in trials if t.state == "finished"}
    for ens in sweep.ensemble:
        results = []
        for ids in ensemble_groups(sweep, ens, finished):
            found = stored_ensemble(runs[ids[0]], ids, [final_checkpoint(runs[i]) for i in ids])
            if found is not None:
                results.append(found)
        mean, std = _mean_std([r.mean_prob_acc for r in results])
        modes = [r.mode_vote_acc for r in results if r.mode_vote_acc is not None]
        mode, mode_std = _mean_std(modes) if len(modes) == len(results) else (None, None)
        mode_gains = [r.mode_vote_gain for r in results if r.mode_vote_gain is not None]
        out.append(EnsembleRow(
            ens.name, list(ens.members), len(results), len(sweep.seeds) if ens.across_seeds else len(ens.members),
            ens.across_seeds, mean, std, _mean_std([r.gain for r in results])[0], mode, mode_std,
            _mean_std(mode_gains)[0] if mode is not None else None, _mean_std([r.vote_acc for r in results])[0],
            _mean_std([r.vote_gain for r in results])[0], ens.guide_gain))
    return out


def sweep_table(runs_dir: Path, name: str, sweep: SweepFile | None = None) -> SweepTable:
    """The results table of sweep `name`, from the run stores in runs_dir."""
    sweep = sweep or read_sweep(runs_dir, name)
    target = sweep.target if sweep else 0.9
    runs = {r.run_id: r for r in sweep_runs(runs_dir, name)}
    try:
        trials = once_per_seed([trial_row(r, target) for r in runs.values()])
        trials += missing_rows(runs_dir, name, set(runs))
        guides = {v.name: v.guide for v in sweep.variant} if sweep else {}
        order = list(guides) if guides else []
        by_config: dict[str, list[TrialRow]] = {}
        for t in trials:
            by_config.setdefault(t.config, []).append(t)
        names = [c for c in order if c in by_config] + sorted(c for c in by_config if c not in order)
        rows = [config_row(c, by_config[c], guides.get(c)) for c in names]
        if sweep is None or sweep.kind != "variant":
            rows.sort(key=lambda r: -1.0 if r.mean is None else r.mean, reverse=True)
        ensembles = _ensemble_rows(sweep, runs, trials) if sweep else []
    finally:
        for r in runs.values():
            r.close()
    return SweepTable(name, sweep.kind if sweep else "", target, rows, trials, ensembles)
