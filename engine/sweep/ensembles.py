"""A sweep's ensembles, evaluated once their members have finished: for each seed, the runs of the
member variants with that seed are ensembled (with `across_seeds`, one variant's runs of every seed)
by `engine.passes.ensemble_runs` (mean probability, majority vote, the guide's torch.mode vote) on
the models the configuration rows report (`final_checkpoint`: the SWA model where a run averaged
weights, else the final one), and the result is stored in the first member's run store, where the
table reads it."""

from __future__ import annotations

from pathlib import Path

from ..store import Run
from .config import SweepFile
from .table import ensemble_groups, final_checkpoint, stored_ensemble, sweep_table


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
                kinds = [final_checkpoint(r) for r in members]  # the models the configuration rows report
                if stored_ensemble(members[0], ids, kinds) is not None:
                    continue
                res = ensemble_runs(members, checkpoint=kinds)
                lines.append(f"ensemble {ens.name} ({', '.join(ids)}): mean probability {res.mean_prob_acc:.2%} "
                             f"({res.gain * 100:+.2f} pts over the best member), guide's torch.mode vote "
                             f"{res.mode_vote_acc:.2%} ({res.mode_vote_gain * 100:+.2f} pts)")
            except PassError as exc:
                lines.append(f"ensemble {ens.name} ({', '.join(ids)}) not evaluated: {exc}")
            except Exception as exc:  # an ensemble never costs the sweep its table; the next run retries it
                lines.append(f"ensemble {ens.name} ({', '.join(ids)}) not evaluated: {type(exc).__name__}: {exc}")
            finally:
                for r in members:
                    r.close()
    return lines
