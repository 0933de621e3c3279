"""A run's meta, typed: the keys a run may hold (`RunMeta`, `RunState`) and the typed parts the engine
writes and the views read (`inference`: what predict and export need; `runtime`: what actually ran)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import ValidationError

from .results import _Part


# ------------------------------------------------------------------------------------- run meta

RunState = Literal["created", "running", "paused", "finished", "stopped", "failed", "crashed"]


class RunMeta(TypedDict, total=False):
    """A run's meta, the key-value table in run.db: written through `Run.set_meta(**keys)`, read with
    `Run.meta()` (a key a run never wrote is absent). A test holds every writer to these keys."""

    # made with the run (Run.create)
    schema_version: int
    run_id: str
    name: str  # the spec's name
    preset: str  # the preset it came from (a path or a name)
    host: str
    created: float  # unix seconds
    # its life (the worker, the launcher, the reaper)
    state: RunState
    pid: int  # the worker's (or torchrun's) process id; while a resume is being launched, the launcher's
    pid_start: str | None  # the start token of that process (engine.store.process): a reused pid is another process
    heartbeat: float  # unix seconds of the worker's last beat (or its spawn): engine.store.liveness
    started: float
    ended: float
    error: str  # why it failed, crashed or stopped early
    error_kind: Literal["usage", "crash", "training"]
    resume: bool  # the next worker continues from last.pt
    kind: str  # "lr_find" for an LR range test (no worker, no model); absent for a training run
    phase: dict[str, Any] | None  # before the first step: {name, detail, done, total, since}
    # what the worker found
    torch_version: str
    device: str
    gpus: list[dict[str, Any]]
    total_steps: int
    steps_per_epoch: int
    epochs: int
    runtime: dict[str, Any]  # what actually runs: a RuntimeInfo, dumped (device, precision, compile, versions)
    inference: dict[str, Any]  # what predict and export need: an InferenceInfo, dumped (classes, normalization, size)
    # data-parallel runs (torchrun)
    launcher: str
    nproc_per_node: int
    nnodes: int
    rdzv_endpoint: str
    world_size: int
    backend: str
    head: bool  # on the node whose cockpit owns the run store
    store_rank: int
    rank_pids: dict[str, list[Any]]  # rank -> [pid, host]
    role: str  # "secondary" on a node that does not hold the store
    store: str  # on a secondary node: where the run store is
    sync_bn: bool
    # a sweep's trial
    sweep: str
    sweep_trial: int
    sweep_config: str
    sweep_seed: int
    sweep_storage: str  # redacted: never a password
    sweep_outcome: str


# ------------------------------------------------------------------------------------- run meta

NOT_CALIBRATED = "not calibrated for this checkpoint (run cockpit calibrate)"


class InferenceInfo(_Part):
    """Meta `inference`: what predict and export need, stored when the run first trains, so neither ever
    opens the dataset (a renamed class folder would shift every label, a moved one fail, a CIFAR preset
    download). Images go in as `channels` x `height` x `width` floats in [0, 1], channels in
    `channel_order`, and are normalized with `mean` and `std` (what the model trained with: the spec's
    figures or the training set's; 0 and 1 when the spec does not normalize)."""
    version: Literal[1] = 1
    classes: list[str]  # in label order: output i is classes[i]
    mean: list[float]
    std: list[float]
    channels: int
    height: int
    width: int
    channel_order: Literal["RGB", "L"]
    test_images: int  # the test set the run's test accuracy is measured on


class RuntimeInfo(_Part):
    """Meta `runtime`: what actually ran (the spec says what was asked): the device, the precision with
    `auto` resolved, the compile mode, the memory format and the library versions."""
    version: Literal[1] = 1
    device: str  # the torch device, e.g. "cuda:0" or "cpu"
    precision: Literal["fp32", "bf16 autocast", "fp16 autocast + GradScaler"]
    compile: str  # "off", or "torch.compile (mode default)"
    memory_format: Literal["channels_last", "contiguous"]
    torch: str
    cuda: str | None  # the CUDA version of the torch build, where the run trains on CUDA; None on the CPU
    cudnn: str | None  # the cuDNN version in use; None without one


def meta_model(meta: dict[str, Any], key: str, model: type[_Part]) -> Any:
    """A typed part of a run's meta, or None where it is absent (an older run) or does not fit."""
    value = meta.get(key)
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None
