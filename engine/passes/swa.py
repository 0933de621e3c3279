"""SWA after the fact: continue a finished or stopped run with SWALR and average its weights."""

from __future__ import annotations

from .. import checkpoint as ckpt
from ..contracts import SWAResult
from ..setup import build
from ..store import Run
from ..train.state import load_parts
from ..train.step import Step
from ..train.swa import SWA
from .common import Log, PassError, guard_instruments, kinds_for, quiet


def _full_checkpoint(run: Run, checkpoint: str, device) -> tuple[dict, str]:
    """The first checkpoint of the fallback chain that can be continued (it holds optimizer state)."""
    for kind in kinds_for(checkpoint):
        try:
            state, used, _ = ckpt.load_latest_good(ckpt.path_for(run.checkpoints, kind), device)
        except ckpt.CheckpointError:
            continue
        if "optimizer" in state:
            return state, used.name
    raise PassError(f"run {run.run_id}: no full checkpoint (last.pt or best.pt with optimizer state) "
                    f"in {run.checkpoints} to continue from")


def swa_pass(run: Run, epochs: int | None = None, checkpoint: str = "last", log: Log | None = None) -> SWAResult:
    """Continue the run from its last checkpoint for `epochs` more epochs (default swa.anneal_epochs
    + 2) with SWALR annealing to swa.lr, averaging the weights at the end of each epoch; recompute
    BN, evaluate base vs SWA on the test set, save checkpoints/swa.pt.

    The run's curves only gain `swa_test_acc` / `swa_test_loss` rows, and `swa_val_*` with a validation
    split (at the step the SWA model reached); the result "swa" is an `SWAResult`."""
    spec = run.spec()
    epochs = max(int(epochs if epochs is not None else spec.swa.anneal_epochs + 2), 1)
    log = log or quiet
    p = build(spec, log=log)
    state, used = _full_checkpoint(run, checkpoint, p.device)
    load_parts(p, state)
    step = base_step = int(state["step"])

    base = p.evaluate()
    inst = guard_instruments(p, spec)
    stepper, swa = Step(p, inst, spec.train.label_smoothing), SWA(p)
    if "swa_model" in state:  # the run was averaging already: carry on with its average
        swa.load_state_dict(state)
    swa.start()
    first_epoch = int(state["epoch"]) + (1 if int(state["batch_in_epoch"]) else 0)
    for i in range(epochs):
        for xb, yb, _ in p.train_loader.epoch_batches(first_epoch + i):
            step += 1
            stepper(p.prepare(xb), yb, step)
            swa.scheduler.step()
        inst.collect([])  # one read per epoch: the run of non-finite steps
        if inst.window["nonfinite_streak"] >= spec.monitor.nonfinite_limit:
            raise PassError(f"SWA pass on {run.run_id} stopped: {int(inst.window['nonfinite_streak'])} non-finite "
                            f"steps in a row (monitor.nonfinite_limit={spec.monitor.nonfinite_limit})")
        swa.update()
        g = p.optimizer.param_groups[0]
        log(f"swa pass: epoch {i + 1}/{epochs} done (lr {g['lr'] / g.get('lr_mult', 1.0):.4g})")
    swa.update_bn()
    res = p.evaluate(swa.model.module)
    path = ckpt.path_for(run.checkpoints, "swa")
    ckpt.save_atomic({"model": swa.model.module.state_dict(), "step": step, "base_step": base_step,
                      "epochs": epochs, "source": used}, path)
    epoch_f = step / max(p.steps_per_epoch, 1)
    rows = [(step, epoch_f, "swa_test_acc", res.acc), (step, epoch_f, "swa_test_loss", res.loss)]
    if p.val_x.shape[0]:
        val = p.evaluate(swa.model.module, "val")
        rows += [(step, epoch_f, "swa_val_acc", val.acc), (step, epoch_f, "swa_val_loss", val.loss)]
    run.add_metrics(rows)
    result = SWAResult(base_acc=base.acc, base_loss=base.loss, swa_acc=res.acc, delta=res.acc - base.acc,
                       test_acc=res.acc, test_loss=res.loss, epochs=epochs, lr=spec.swa.lr,
                       anneal_epochs=spec.swa.anneal_epochs, anneal_strategy=spec.swa.anneal_strategy,
                       base_step=base_step, step=step, source=used, checkpoint=path.name)
    run.add_result(result, step=step, checkpoint=path.name)
    message = (f"SWA pass ({epochs} epochs from {used}, swa lr {spec.swa.lr:g}): test acc {base.acc:.2%} -> "
               f"{res.acc:.2%} ({res.acc - base.acc:+.2%})")
    run.add_event("swa_pass", message, step=step, checkpoint=path.name)
    log(message)
    return result
