"""Test-time augmentation: the test accuracy with and without averaging over views."""

from __future__ import annotations

import statistics

from ..contracts import TTA, TTAResult
from ..evaluate import tta_evaluate
from ..store import Run
from .common import Log, PassError, Subject, record, store_confusion

# The guide's tta_predict(model, inputs, n_aug=5): five randomly augmented views (its
# test_time_augment is left to the reader; here it is the run's own training augmentation), and
# the mean of the model's outputs (logits). The plain view is not in the mean.
GUIDE_TTA: dict = {"views": [], "random_views": 5, "combine": "logits"}


def tta_pass(run: Run, subj: Subject, command: TTA, log: Log | None = None) -> TTAResult:
    """Options the command leaves out come from the spec's [evaluate] (under `tta_recipe = "guide"`,
    from `GUIDE_TTA`); random views draw under `fork_rng`, so a live run's own random stream is untouched.
    With `draws` N > 1 the random views are drawn N times (seeds seed .. seed + N - 1) and the result
    holds the means, each draw's accuracy and their sample std: one draw's gain can be its luck."""
    p = subj.parts
    ev = p.spec.evaluate
    spec_views, spec_random, spec_combine = (
        (GUIDE_TTA["views"], GUIDE_TTA["random_views"], GUIDE_TTA["combine"]) if ev.tta_recipe == "guide"
        else (ev.tta_views, ev.tta_random_views, ev.tta_combine))
    c = command
    random_views = int(spec_random if c.random_views is None else c.random_views)
    draws, seed = int(c.draws or 1), int(p.spec.train.seed if c.seed is None else c.seed)
    if draws > 1 and random_views == 0:
        raise PassError(f"TTA over {draws} draws needs random views: without them every draw is the same "
                        "(add --random-views N or use --recipe guide)")
    runs = []
    for i in range(draws):
        data = tta_evaluate(subj.model, p.test_x, p.test_y, p.augment, views=spec_views if c.views is None else c.views,
                            translate=int(ev.tta_translate if c.translate is None else c.translate),
                            random_views=random_views, combine=c.combine or spec_combine, seed=seed + i,
                            batch_size=p.spec.train.eval_batch_size, amp_dtype=p.amp_dtype,
                            channels_last=p.channels_last, bins=ev.ece_bins, return_logits=True)
        data.pop("_logits")
        base_logits = data.pop("_base_logits")
        if i == 0:
            store_confusion(run, subj, base_logits)  # the identity view: the same in every draw
        runs.append(data)
    result = TTAResult(**_over_draws(runs, seed), checkpoint=subj.checkpoint, step=subj.step, weights_sha256=subj.digest)
    spread = (f" = mean of {draws} draws ± {result.tta_acc_std:.2%} (sample std)" if draws > 1 else "")
    return record(run, subj, result, "tta", f"TTA on {subj.checkpoint} ({result.n_views} views, {result.combine}, "
                  f"{result.seeds_text}): {result.base_acc:.2%} -> {result.tta_acc:.2%}{spread} ({result.delta:+.2%})", log)


def _over_draws(runs: list[dict], seed: int) -> dict:
    """One draw's figures as they are; several draws' as their means, with each draw's accuracy and their sample std."""
    first = dict(runs[0])
    if len(runs) == 1:
        return first | {"seed": seed, "draws": 1, "draw_seeds": [seed], "draw_accs": [first["tta_acc"]]}
    accs = [r["tta_acc"] for r in runs]
    mean = statistics.fmean
    return first | {
        "tta_acc": mean(accs), "tta_loss": mean(r["tta_loss"] for r in runs), "ece": mean(r["ece"] for r in runs),
        "delta": mean(accs) - first["base_acc"], "views": {k: mean(r["views"][k] for r in runs) for k in first["views"]},
        "seed": seed, "draws": len(runs), "draw_seeds": [seed + i for i in range(len(runs))], "draw_accs": accs,
        "tta_acc_std": statistics.stdev(accs),
    }
