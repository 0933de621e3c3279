"""Ensembles: several runs' models on one test set, by mean probability, by majority vote (a tie to
the highest mean probability) and by the guide's `torch.mode` vote (a tie to the lowest class)."""

from __future__ import annotations

import torch

from ..contracts import EnsembleResult
from ..evaluate import ensemble_evaluate, predict
from ..setup import build
from ..spec import RunSpec
from ..store import Run
from .common import Log, PassError, load_weights, quiet


def _same_data(a: RunSpec, b: RunSpec) -> str | None:
    """Why two specs cannot share a test set (cheap spec-level check before any data is loaded)."""
    da, db = a.data, b.data
    if da.source != db.source:
        return f"data.source {da.source} vs {db.source}"
    if da.source == "synthetic":
        for key in ("synthetic_test", "synthetic_classes", "image_size"):
            if getattr(da, key) != getattr(db, key):
                return f"data.{key} {getattr(da, key)} vs {getattr(db, key)}"
        if da.seed != db.seed:
            return f"synthetic data made with data.seed {da.seed} vs {db.seed}"
    return None


def ensemble_runs(runs: list[Run], checkpoint: str | list[str] = "best", store: bool = True,
                  log: Log | None = None) -> EnsembleResult:
    """Ensemble several runs' models on the first run's test set (they must share data and classes).

    Each run's model is rebuilt from its spec.toml (with its own normalization) and `checkpoint`
    ("best" falls back to "last"), one for all runs or one per run; returns `ensemble_evaluate`'s
    figures with members named by run id, plus "checkpoints". With `store`, the result "ensemble"
    and an event go to the first run.
    """
    if len(runs) < 2:
        raise PassError("an ensemble needs at least two runs")
    choices = [checkpoint] * len(runs) if isinstance(checkpoint, str) else list(checkpoint)
    if len(choices) != len(runs):
        raise PassError(f"{len(choices)} checkpoints for {len(runs)} runs")
    ids = [r.run_id for r in runs]
    paths = [r.path.resolve() for r in runs]  # ids are per runs dir: two dirs may hold the same id
    if len(set(paths)) != len(paths):
        raise PassError(f"the same run is listed twice: {', '.join(ids)}")
    specs = [r.spec() for r in runs]
    for r, s in zip(runs[1:], specs[1:]):
        why = _same_data(specs[0], s)
        if why:
            raise PassError(f"runs {runs[0].run_id} and {r.run_id} do not share a test set ({why}): "
                            "an ensemble needs runs trained on the same data and classes")
    logits, used = [], []
    ref_x = ref_y = classes = None
    for r, s, choice in zip(runs, specs, choices):
        parts = build(s, log=log or quiet)
        if ref_x is None:
            ref_x, ref_y, classes = parts.test_x, parts.test_y, list(parts.data.classes)
        elif list(parts.data.classes) != classes or parts.test_x.shape != ref_x.shape \
                or not torch.equal(parts.test_y, ref_y) \
                or not torch.equal(parts.test_x, ref_x):
            raise PassError(f"runs {runs[0].run_id} and {r.run_id} do not share a test set (classes or images "
                            "differ): an ensemble needs runs trained on the same data and classes")
        name, _ = load_weights(parts.model, r, choice, parts.device)
        used.append(name)
        logits.append(predict(parts.model, ref_x, s.train.eval_batch_size, parts.augment.eval, parts.amp_dtype,
                              parts.channels_last))
        del parts
    data = ensemble_evaluate(logits, ref_y, ids)
    for m, c in zip(data["members"], used):
        m["checkpoint"] = c
    result = EnsembleResult(**data, checkpoints=used)
    if store:
        first = runs[0]
        first.add_result(result, step=first.last_step(), checkpoint=used[0])
        first.add_event("ensemble", f"ensemble of {len(runs)} runs: mean probability {result.mean_prob_acc:.2%} "
                        f"({result.gain:+.2%}), majority vote (tie: highest mean probability) {result.vote_acc:.2%}, "
                        f"guide's torch.mode vote (tie: lowest class) {result.mode_vote_acc:.2%}, best member "
                        f"{result.best_member_acc:.2%}", step=first.last_step(), runs=ids)
    return result
