"""Test-time augmentation: the test accuracy with and without averaging over views."""

from __future__ import annotations

from ..contracts import TTA, TTAResult
from ..evaluate import tta_evaluate
from ..store import Run
from .common import Log, Subject, record, store_confusion

# The guide's tta_predict(model, inputs, n_aug=5): five randomly augmented views (its
# test_time_augment is left to the reader; here it is the run's own training augmentation), and
# the mean of the model's outputs (logits). The plain view is not in the mean.
GUIDE_TTA: dict = {"views": [], "random_views": 5, "combine": "logits"}


def tta_pass(run: Run, subj: Subject, command: TTA, log: Log | None = None) -> TTAResult:
    """Options the command leaves out come from the spec's [evaluate] (under `tta_recipe = "guide"`,
    from `GUIDE_TTA`); random views draw under `fork_rng`, so a live run's own random stream is untouched."""
    p = subj.parts
    ev = p.spec.evaluate
    spec_views, spec_random, spec_combine = (
        (GUIDE_TTA["views"], GUIDE_TTA["random_views"], GUIDE_TTA["combine"]) if ev.tta_recipe == "guide"
        else (ev.tta_views, ev.tta_random_views, ev.tta_combine))
    c = command
    data = tta_evaluate(subj.model, p.test_x, p.test_y, p.augment, views=spec_views if c.views is None else c.views,
                        translate=int(ev.tta_translate if c.translate is None else c.translate),
                        random_views=int(spec_random if c.random_views is None else c.random_views),
                        combine=c.combine or spec_combine, seed=int(p.spec.train.seed if c.seed is None else c.seed),
                        batch_size=p.spec.train.eval_batch_size, amp_dtype=p.amp_dtype,
                        channels_last=p.channels_last, bins=ev.ece_bins, return_logits=True)
    data.pop("_logits")
    store_confusion(run, subj, data.pop("_base_logits"))
    result = TTAResult(**data, checkpoint=subj.checkpoint, step=subj.step)
    return record(run, subj, result, "tta", f"TTA on {subj.checkpoint} ({result.n_views} views, {result.combine}): "
                  f"{result.base_acc:.2%} -> {result.tta_acc:.2%} ({result.delta:+.2%})", log)
