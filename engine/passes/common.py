"""What the passes share: their error, checkpoint loading with fallbacks, the model a pass works on
(the live one or one rebuilt from the run's spec), and an instrument set that only guards steps."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .. import checkpoint as ckpt
from ..contracts import ConfusionResult, ResultModel, UsageError
from ..evaluate import confusion, predict
from ..instruments import Instruments
from ..setup import Components, build
from ..spec import MonitorSpec, RunSpec
from ..store import Run

Log = Callable[[str], None]

FALLBACK = {"best": ("best", "last"), "last": ("last", "best"), "swa": ("swa",)}


class PassError(UsageError):
    """A pass that cannot run on this run (no validation split, no checkpoint...); the message says why."""


def quiet(_msg: str) -> None:
    pass


def kinds_for(checkpoint: str) -> tuple[str, ...]:
    """The checkpoint kinds to try, in order: "best" falls back to "last" and vice versa."""
    name = checkpoint[:-3] if checkpoint.endswith(".pt") else checkpoint
    return FALLBACK.get(name, (name,))


def load_weights(model: torch.nn.Module, run: Run, checkpoint: str = "best",
                 device: torch.device | str = "cpu") -> tuple[str, dict[str, Any]]:
    """Load a run's checkpoint ("best" falls back to "last" and vice versa; "swa"; or a file name in
    checkpoints/) into `model`; returns (file name used, the checkpoint dict)."""
    problems = []
    for kind in kinds_for(checkpoint):
        path = ckpt.path_for(run.checkpoints, kind)
        if not path.exists() and not ckpt.previous(path).exists():
            problems.append(f"no {path.name}")
            continue
        try:
            state, used, _ = ckpt.load_latest_good(path, device)
        except ckpt.CheckpointError as exc:
            problems.append(str(exc))
            continue
        if "model" not in state:
            problems.append(f"{used.name} holds no model weights")
            continue
        model.load_state_dict(state["model"])
        return used.name, state
    raise PassError(f"run {run.run_id}: no usable checkpoint for {checkpoint!r} in {run.checkpoints} "
                    f"({'; '.join(problems)})")


@dataclass
class Subject:
    """What a pass evaluates: the run's parts, the model (live, or loaded), its checkpoint and step."""

    parts: Components
    model: torch.nn.Module
    checkpoint: str
    step: int

    @property
    def digest(self) -> str:
        """The weights' SHA-256 (engine.checkpoint.weights_digest): what a result measured on them names."""
        return ckpt.weights_digest(self.model.state_dict())


def subject(run: Run, live: Components | None, live_step: int, checkpoint: str | None, log: Log | None) -> Subject:
    """The live model (or, with `checkpoint`, a copy of it loaded from that file), else the run's
    model rebuilt from its spec.toml and loaded from `checkpoint` (default "best")."""
    if live is not None:
        if not checkpoint:
            return Subject(live, live.model, "live", live_step)
        model = copy.deepcopy(live.model)
        name, state = load_weights(model, run, checkpoint, live.device)
        return Subject(live, model, name, int(state.get("step", live_step)))
    parts = build(run.spec(), log=log or quiet)
    name, state = load_weights(parts.model, run, checkpoint or "best", parts.device)
    return Subject(parts, parts.model, name, int(state.get("step", 0)))


def guard_instruments(parts: Components, spec: RunSpec) -> Instruments:
    """Instruments with every sampled cadence off: the grad norm, clipping and the non-finite skip only."""
    monitor = MonitorSpec(every=spec.monitor.every, grad_flow_every=0, activations_every=0, difficulty_every=0,
                          nonfinite_limit=spec.monitor.nonfinite_limit)
    return Instruments(parts.model, monitor, parts.device, grad_clip=spec.train.grad_clip)


def store_confusion(run: Run, subj: Subject, logits: torch.Tensor) -> ConfusionResult:
    """The confusion matrix of the subject's test logits, stored with the pass that made them."""
    p = subj.parts
    conf = ConfusionResult(**confusion(logits, p.test_y, list(p.data.classes)), checkpoint=subj.checkpoint)
    run.add_result(conf, step=subj.step, checkpoint=subj.checkpoint)
    return conf


def test_logits(subj: Subject) -> torch.Tensor:
    p = subj.parts
    return predict(subj.model, p.test_x, p.spec.train.eval_batch_size, p.augment.eval, p.amp_dtype, p.channels_last)


def record(run: Run, subj: Subject, result: ResultModel, event: str, message: str, log: Log | None) -> ResultModel:
    """Store a pass's result and its event (both naming the checkpoint and step), and log the message."""
    run.add_result(result, step=subj.step, checkpoint=subj.checkpoint)
    run.add_event(event, message, step=subj.step, checkpoint=subj.checkpoint)
    (log or quiet)(message)
    return result
