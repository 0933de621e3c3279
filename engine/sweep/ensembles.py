"""A sweep's ensembles, evaluated once their members have finished: for each seed, the runs of the
member variants with that seed are ensembled (with `across_seeds`, one variant's runs of every seed)
by `engine.passes.ensemble_runs` (majority vote and mean probability) and the result is stored in the first member's run store, where the table reads it."""

from __future__ import annotations

from pathlib import Path

from ..contracts import EnsembleResult
from ..store import Run
from .config import SweepFile
from .table import ensemble_groups, sweep_table


def _done(first: Run, ids: list[str]) -> bool:
    return any(isinstance(r.data, EnsembleResult) and [m.run for m in r.data.members] == ids
               for r in first.results("ensemble"))


def evaluate_ensembles(sweep: SweepFile, runs_dir: Path) -> list[str]:
    """Evaluate every ensemble of every seed whose members have all finished and that is not stored
    yet; a line per ensemble evaluated (or why it could not be)."""
    from ..passes import ensemble_runs
    from ..passes.common import PassError

    # the runs the table counts: one per (configuration, seed)
    finished = {(t.config, t.seed): t.run_id for t in sweep_table(runs_dir, sweep.name, sweep).trials
                if t.state == "finished"}
    lines = []
    for ens in sweep.ensemble:
        for ids in ensemble_groups(sweep, ens, finished):
            members = [Run(Path(runs_dir) / i) for i in ids]
            try:
                if _done(members[0], ids):
                    continue
                res = ensemble_runs(members, checkpoint="best")
                lines.append(f"ensemble {ens.name} ({', '.join(ids)}): {res.mean_prob_acc:.2%} "
                             f"({res.gain * 100:+.2f} pts over the best member)")
            except PassError as exc:
                lines.append(f"ensemble {ens.name} ({', '.join(ids)}) not evaluated: {exc}")
            except Exception as exc:  # an ensemble never costs the sweep its table; the next run retries it
                lines.append(f"ensemble {ens.name} ({', '.join(ids)}) not evaluated: {type(exc).__name__}: {exc}")
            finally:
                for r in members:
                    r.close()
    return lines
