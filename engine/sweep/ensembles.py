"""A sweep's ensembles, evaluated once their members have finished: for each seed, the runs of the
member variants with that seed are ensembled (`engine.passes.ensemble_runs`: majority vote and mean
probability) and the result is stored in the first member's run store, where the table reads it."""

from __future__ import annotations

from pathlib import Path

from ..contracts import EnsembleResult
from ..store import Run
from .config import SweepFile
from .table import sweep_runs


def _done(first: Run, ids: list[str]) -> bool:
    return any(isinstance(r.data, EnsembleResult) and [m.run for m in r.data.members] == ids
               for r in first.results("ensemble"))


def evaluate_ensembles(sweep: SweepFile, runs_dir: Path) -> list[str]:
    """Evaluate every ensemble of every seed whose members have all finished and that is not stored
    yet; a line per ensemble evaluated (or why it could not be)."""
    from ..passes import ensemble_runs
    from ..passes.common import PassError

    finished: dict[tuple[str, int], str] = {}
    for run in sweep_runs(runs_dir, sweep.name):
        meta = run.meta()
        if run.state() == "finished" and not meta.get("sweep_outcome"):
            finished[(meta.get("sweep_config", ""), int(meta.get("sweep_seed", 0)))] = run.run_id
        run.close()
    lines = []
    for ens in sweep.ensemble:
        for seed in sweep.seeds:
            ids = [finished.get((m, seed), "") for m in ens.members]
            if not all(ids):
                continue
            members = [Run(Path(runs_dir) / i) for i in ids]
            try:
                if _done(members[0], ids):
                    continue
                res = ensemble_runs(members, checkpoint="best")
                lines.append(f"ensemble {ens.name}, seed {seed}: {res.mean_prob_acc:.2%} "
                             f"({res.gain * 100:+.2f} pts over the best member)")
            except (PassError, ValueError, OSError) as exc:
                lines.append(f"ensemble {ens.name}, seed {seed} not evaluated: {exc}")
            finally:
                for r in members:
                    r.close()
    return lines
