"""The Optuna side of a sweep: its storage, sampler and pruner, and the queue of trials.

A sweep is one Optuna study named after it. Fixed configurations (variants, grid points) are
enqueued once, one trial per configuration and seed; a worker claims a waiting trial with the
storage's own atomic WAITING -> RUNNING transition (what `Study.ask` does), so two workers on one
study never run the same trial. A search samples new configurations with TPE (or random) up to its
budget and enqueues the other seeds of each; the objective is a trial's final validation accuracy
(pruning reads each epoch's), never its test accuracy. The sweep file and its presets are stored
in the study's user attributes, so a worker on another machine needs only the storage URL and the
name.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from ..contracts import UsageError
from ..store import pid_alive
from .common import INTERRUPTED, JOURNAL, sweep_dir
from .config import Config, SweepFile, configs, from_json, grid_label, sets, sweep_json
from .journal import Journal, damage, is_damage, open_journal
from .secrets import redact

optuna.logging.set_verbosity(optuna.logging.WARNING)


def open_storage(url: str | None, runs_dir: Path, name: str) -> BaseStorage:
    """The study's storage: a journal file under runs/sweeps/<name>/ by default; a database URL
    (postgresql://..., sqlite:///...) as an RDB storage; any other string as a journal file path."""
    if url and "://" in url:
        try:
            # get_storage wraps it the way create_study would: claims and the study share one object
            return optuna.storages.get_storage(RDBStorage(url))
        except Exception as exc:  # sqlalchemy's errors: a bad URL, a server not there, a missing driver
            missing = isinstance(exc, ImportError) or "No module named" in str(exc)
            hint = "; install its driver, e.g. pip install 'psycopg[binary]'" if missing else ""
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(redact(f"cannot open storage {url}: {first}{hint}", url)) from None
    path = Path(url) if url else sweep_dir(runs_dir, name) / JOURNAL
    path.parent.mkdir(parents=True, exist_ok=True)
    return open_journal(path, name)


DRIVERS = ("sqlalchemy", "psycopg", "psycopg2", "pymysql", "MySQLdb")


def storage_failure(study: Study, exc: BaseException, url: str = "") -> str | None:
    """One line saying what went wrong with the study's storage while a sweep ran (a database gone,
    a journal damaged by another writer), or None when `exc` is not the storage's."""
    if isinstance(study.storage, Journal) and is_damage(exc):
        return damage(study.storage.path, study.sweep.name, exc)
    if type(exc).__module__.split(".")[0] in DRIVERS:
        first = (str(exc).strip().splitlines() or [""])[0]
        return redact(f"the sweep's storage {url} failed ({type(exc).__name__}: {first})", url)
    return None


def _sampler(sweep: SweepFile) -> optuna.samplers.BaseSampler:
    if sweep.kind == "grid":
        return optuna.samplers.GridSampler({**sweep.grid, "seed": sweep.seeds})
    if sweep.search is not None and sweep.search.sampler == "random":
        return optuna.samplers.RandomSampler()
    return optuna.samplers.TPESampler()


def _pruner(sweep: SweepFile) -> optuna.pruners.BasePruner:
    if not sweep.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=sweep.pruner_startup_trials,
                                       n_warmup_steps=sweep.pruner_warmup_epochs)


def distributions(sweep: SweepFile) -> dict[str, Any]:
    """Each parameter's Optuna distribution (for fixed trials too, so the study records them)."""
    if sweep.kind == "variant":
        return {"config": CategoricalDistribution([v.name for v in sweep.variant]),
                "seed": CategoricalDistribution(sweep.seeds)}
    if sweep.kind == "grid":
        return {**{k: CategoricalDistribution(v) for k, v in sweep.grid.items()},
                "seed": CategoricalDistribution(sweep.seeds)}
    out: dict[str, Any] = {}
    assert sweep.search is not None
    for key, p in sweep.search.space.items():
        if p.type == "categorical":
            out[key] = CategoricalDistribution(p.choices)
        elif p.type == "int":
            out[key] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[key] = FloatDistribution(p.low, p.high, log=p.log)
    return out


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    """The trial's value for one parameter (an enqueued trial's fixed value, else the sampler's)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


@dataclass
class Ticket:
    """A claimed trial: what to run, and (after a Ctrl+C) the run to continue."""
    trial: optuna.Trial
    config: Config
    seed: int
    resume_run: str = ""


class Study:
    """One sweep's study: create or load it, claim trials, record outcomes."""

    def __init__(self, study: optuna.Study, storage: BaseStorage, sweep: SweepFile, presets: dict[str, str]):
        self.study, self.storage, self.sweep, self.presets = study, storage, sweep, presets

    @classmethod
    def create(cls, sweep: SweepFile, presets: dict[str, str], storage: BaseStorage) -> Study:
        """A new study with its queue; UsageError if a different sweep of that name is stored."""
        study = optuna.create_study(study_name=sweep.name, storage=storage, direction="maximize",
                                    sampler=_sampler(sweep), pruner=_pruner(sweep), load_if_exists=True)
        text = sweep_json(sweep, presets)
        stored = study.user_attrs.get("sweep")
        if stored is not None:
            if stored != text:
                raise UsageError(f"a different sweep named {sweep.name!r} is already in this storage: rename it, "
                                 f"or continue that one with `cockpit sweep resume {sweep.name}`")
            raise UsageError(f"sweep {sweep.name!r} already exists: `cockpit sweep resume {sweep.name}` continues "
                             f"it, `cockpit sweep join {sweep.name}` adds a worker")
        study.set_user_attr("sweep", text)
        for seed in sweep.seeds:  # seed-major: a first look at every configuration comes early
            for c in configs(sweep):
                study.enqueue_trial({**c.params, "seed": seed}, user_attrs={"config": c.label, "seed": seed},
                                    skip_if_exists=False)
        return cls(study, storage, sweep, presets)

    @classmethod
    def load(cls, name: str, storage: BaseStorage) -> Study:
        """The stored sweep `name`; UsageError if there is none."""
        try:
            plain = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            known = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
            raise UsageError(f"no sweep {name!r} in this storage (sweeps there: {known})") from None
        if "sweep" not in plain.user_attrs:
            raise UsageError(f"study {name!r} is not a cockpit sweep (it has no stored sweep file)")
        sweep, presets = from_json(plain.user_attrs["sweep"])
        study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(sweep), pruner=_pruner(sweep))
        return cls(study, storage, sweep, presets)

    # -- claiming trials ---------------------------------------------------------------------

    def next_ticket(self) -> Ticket | None:
        """A waiting trial claimed for this worker, or a newly sampled one while the search's budget
        lasts; None when there is nothing left to run."""
        trial = self._claim_waiting()
        if trial is None:
            if self.sweep.search is None or self.sampled() >= self.sweep.search.trials:
                return None
            trial = self.study.ask()
            trial.set_user_attr("origin", "sampled")
        attrs = trial.user_attrs
        params = {k: _suggest(trial, k, d) for k, d in distributions(self.sweep).items()}
        seed = int(attrs.get("seed", self.sweep.seeds[0]))
        label = attrs.get("config") or self._label(trial, params)
        if "config" not in attrs:
            trial.set_user_attr("config", label)
            trial.set_user_attr("seed", seed)
            for other in self.sweep.seeds[1:]:  # the sampled configuration's other seeds
                self.study.enqueue_trial(params, user_attrs={"config": label, "seed": other, "origin": "seed"})
        config = self._config(label, params)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        return Ticket(trial, config, seed, str(attrs.get("resume_run", "")))

    def _claim_waiting(self) -> optuna.Trial | None:
        study_id = self.storage.get_study_id_from_name(self.sweep.name)
        for frozen in self.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if self.storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                    return optuna.Trial(self.study, frozen._trial_id)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
        return None

    def _label(self, trial: optuna.Trial, params: dict[str, Any]) -> str:
        return f"t{trial.number:03d}" if self.sweep.kind == "search" else grid_label(params)

    def _config(self, label: str, params: dict[str, Any]) -> Config:
        for c in configs(self.sweep):
            if c.label == label:
                return c
        return Config(label, self.sweep.base, tuple(sets({k: v for k, v in params.items() if k != "seed"})), params)

    def sampled(self) -> int:
        return sum(1 for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("origin") == "sampled")

    # -- outcomes ----------------------------------------------------------------------------

    def tell(self, ticket: Ticket, outcome: str, value: float | None = None, **attrs: Any) -> None:
        """Record a trial's end: finished (with its value: validation accuracy, never test accuracy),
        pruned, or failed for a reason. A finished trial with no value (its run has no validation
        split, which only a sweep whose Optuna acts on no value may have) completes without one."""
        for k, v in {"outcome": outcome, **attrs}.items():
            ticket.trial.set_user_attr(k, v)
        if outcome == "finished" and value is not None:
            self.study.tell(ticket.trial, value)
        elif outcome == "finished" and not self.sweep.needs_val:
            self.storage.set_trial_state_values(ticket.trial._trial_id, state=TrialState.COMPLETE)
        elif outcome == "pruned":
            self.study.tell(ticket.trial, state=TrialState.PRUNED)
        else:
            self.study.tell(ticket.trial, state=TrialState.FAIL)

    def requeue_interrupted(self) -> int:
        """Queue again the trials a Ctrl+C (or a dead sweep process on this host) left unfinished,
        each to continue its run from its checkpoint; the number queued."""
        host = socket.gethostname()
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            pid = t.user_attrs.get("pid")
            if t.user_attrs.get("host") == host and pid and not pid_alive(int(pid)):
                self.study.tell(t.number, state=TrialState.FAIL)  # its sweep process is gone: no outcome
        done = set(self.study.user_attrs.get("requeued", []))
        queued = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            stale = t.user_attrs.get("outcome") in (None, INTERRUPTED)
            if not stale or t.number in done:
                continue
            attrs = {k: t.user_attrs[k] for k in ("config", "seed", "origin") if k in t.user_attrs}
            self.study.enqueue_trial(t.params, user_attrs={**attrs, "resume_run": t.user_attrs.get("run_id", ""),
                                                           "requeued_from": t.number})
            queued.append(t.number)
        if queued:
            self.study.set_user_attr("requeued", sorted(done | set(queued)))
        return len(queued)

    def counts(self) -> dict[str, int]:
        """Trials by state (waiting, running, complete, pruned, fail)."""
        out: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
        return out


def importances(study: Study) -> dict[str, float]:
    """Optuna's parameter importances over the finished trials (PED-ANOVA: no scikit-learn needed);
    empty while there are too few trials to say."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    params = [k for k in distributions(study.sweep) if k != "seed"]
    try:
        return dict(get_param_importances(study.study, evaluator=PedAnovaImportanceEvaluator(), params=params))
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}
