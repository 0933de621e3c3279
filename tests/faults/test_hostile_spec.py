"""Hostile values: whatever the spec accepts, the engine can use; everything else is a usage error (exit 2).

Hypothesis draws specs that pass validation, with every value drawn from the
whole range its field allows (only the sizes that cost time are kept small), and builds what the worker
builds from them; the CLI answers the issue's hostile values with exit 2 and the dotted path.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.augment import Augmenter
from engine.contracts import UsageError
from engine.data import load_dataset
from engine.models import MODELS, build_model
from engine.optim import build_optimizer, build_scheduler
from engine.spec import AdamSpec, AdamWSpec, RMSpropSpec, RunSpec, SGDSpec, SpecError, dump_spec, load_spec, parse_spec_text, validate

from ..conftest import cockpit

OPTIMIZER_SPECS = {cls.model_fields["name"].default: cls for cls in (SGDSpec, AdamWSpec, AdamSpec, RMSpropSpec)}

# what the issue saw recorded as crashes (exit 1), and what `spec check` let through
ISSUE_VALUES = [
    ("train.seed", ["train.seed=99999999999999999999999"]),
    ("schedule.warmup_epochs", ["schedule.warmup_epochs=inf"]),
    ("optim.betas", ["optim.name=adamw", "optim.betas=[1.5, 2]"]),
    ("data.synthetic_train", ["data.synthetic_train=1000000000000"]),
    ("optim.layer_lr.stem", ["optim.layer_lr.stem=nan"]),
    ("swa.lr", ["swa.lr=inf"]),
    ("optim.eps", ["optim.name=adamw", "optim.eps=inf"]),
    ("schedule.div_factor", ["schedule.div_factor=inf"]),
    ("monitor.spike_factor", ["monitor.spike_factor=inf"]),
    ("data.val_size", ["data.val_size=5000"]),
]


def set_args(sets: list[str]) -> list[str]:
    return [arg for item in sets for arg in ("--set", item)]


@pytest.mark.parametrize(("key", "sets"), ISSUE_VALUES, ids=[k for k, _ in ISSUE_VALUES])
def test_spec_check_answers_each_hostile_value_with_exit_2_and_its_path(key, sets):
    res = cockpit("spec", "check", *set_args(sets))
    assert res.returncode == 2, res.stdout + res.stderr
    assert key in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.parametrize("sets", [["train.seed=99999999999999999999999"], ["optim.layer_lr.stem=nan"],
                                  ["data.val_size=5000"], ["optim.lr=" + "[" * 5000]], ids=lambda s: s[0][:24])
def test_run_refuses_a_hostile_value_with_exit_2_and_creates_no_run(sets, tmp_path):
    runs = tmp_path / "runs"
    res = cockpit("run", *set_args(sets), env={"COCKPIT_RUNS": str(runs)})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert not runs.exists() or not any(runs.iterdir())


# ------------------------------------------------------------------------------- drawing specs


def leaves(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """{dotted path: field} of every leaf of a section (the optimizer's fields come per optimizer)."""
    out: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        path = prefix + name
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out |= leaves(info.annotation, path + ".")
        elif path not in ("optim", "optim.name"):
            out[path] = info
    return out


def bounds(info: FieldInfo) -> tuple[Any, Any, bool, bool]:
    """(low, high, low excluded, high excluded) from the field's constraints."""
    lo = hi = None
    lo_open = hi_open = False
    for m in info.metadata:
        if isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Le):
            hi = m.le
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
    return lo, hi, lo_open, hi_open


def pair(lo: float, hi: float) -> st.SearchStrategy:
    return st.tuples(st.floats(lo, hi), st.floats(lo, hi)).map(sorted).map(tuple)


# the environment, not values: which data, where, which device, how many threads, compiled or not
FIXED = {"name", "data.source", "data.root", "data.download", "train.device", "train.threads", "train.compile",
         "train.sync_bn", "monitor.tensorboard",
         "train.channels_last_cpu"}  # channels_last on the CPU crashed PyTorch (SIGSEGV/SIGABRT in backward) on odd shapes
# what costs time, kept small (these win over COMPOSITE); every other value comes from its field's whole range
CHEAP = {
    "data.synthetic_train": st.integers(8, 96), "data.synthetic_test": st.integers(4, 48),
    "data.image_size": st.integers(8, 24), "data.val_size": st.integers(0, 16),
    "train.batch_size": st.integers(2, 32), "train.eval_batch_size": st.integers(1, 64),
    "model.width": st.floats(0.01, 0.5), "evaluate.tta_random_views": st.integers(0, 3),
    "model.name": st.sampled_from(["tiny", "fastnet", "resnet18", "resnet34", "resnet50"]),  # tests/test_zoo.py: the rest
}
COMPOSITE = {
    "augment.resized_crop.scale": pair(1e-6, 1.0).filter(lambda p: p[0] > 0),
    "augment.erasing.scale": pair(1e-6, 1.0).filter(lambda p: p[0] > 0),
    "augment.resized_crop.ratio": pair(0.01, 100.0),
    "augment.erasing.ratio": pair(0.01, 100.0),
    "optim.betas": st.tuples(*[st.floats(0, 1, exclude_max=True)] * 2),
    "optim.layer_lr": st.dictionaries(st.sampled_from(["stem", "fc", "layer1", "layer4.1", "head", "blocks"]),
                                      st.floats(0, 1000, exclude_min=True), max_size=3),
    "schedule.milestones": st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), max_size=4).map(sorted),
    "evaluate.tta_views": st.lists(st.sampled_from(["identity", "flip", "translate", "airbench"]), max_size=4),
    "model.name": st.sampled_from([*MODELS, "torchvision:resnet18", "torchvision:mobilenet_v3_small"]),
    # fixed normalization (empty: the dataset's), the 3conv stem's channels
    "augment.mean": st.one_of(st.just([]), st.lists(st.floats(-10, 10), min_size=3, max_size=3)),
    "augment.std": st.one_of(st.just([]), st.lists(st.floats(1e-3, 10), min_size=3, max_size=3)),
    "model.stem_channels": st.lists(st.integers(1, 96), min_size=3, max_size=3),
    "model.block_channels": st.lists(st.integers(1, 96), min_size=3, max_size=3),  # fastnet's, for the CPU record
}


def field_strategy(path: str, info: FieldInfo, overrides: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    if path in overrides:
        return overrides[path]
    ann = info.annotation
    if ann is bool:
        return st.booleans()
    if get_origin(ann) is Literal:
        return st.sampled_from(get_args(ann))
    lo, hi, lo_open, hi_open = bounds(info)
    if ann is int:
        return st.integers(None if lo is None else lo + lo_open, None if hi is None else hi - hi_open)
    if ann is float:
        return st.floats(lo, hi, exclude_min=lo_open, exclude_max=hi_open, allow_nan=False, allow_infinity=False)
    raise AssertionError(f"no strategy for {path} ({ann}): add one to COMPOSITE")


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *tables, key = path.split(".")
    for t in tables:
        data = data.setdefault(t, {})
    data[key] = value


@st.composite
def valid_specs(draw, overrides: dict[str, st.SearchStrategy]) -> RunSpec:
    """A spec that passes validation, up to a dozen fields changed from the defaults."""
    optimizer = draw(st.sampled_from(sorted(OPTIMIZER_SPECS)))
    fields = leaves(RunSpec) | leaves(OPTIMIZER_SPECS[optimizer], "optim.")
    fields = {p: f for p, f in sorted(fields.items()) if p not in FIXED}
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), max_size=12, unique=True))
    data: dict[str, Any] = {"optim": {"name": optimizer}, "train": {"device": "cpu"}}
    for path in [*CHEAP, *chosen]:  # the cheap sizes always, so the defaults never cost time
        set_path(data, path, draw(field_strategy(path, fields[path], overrides)))
    try:
        return validate(data)
    except SpecError:
        reject()


# ----------------------------------------------------------------------------- using a spec


def build_and_step(spec: RunSpec) -> None:
    """What the worker builds from a spec, and one optimizer step; the LR schedule over the whole run."""
    data = load_dataset(spec.data, spec.train.seed)
    augment = Augmenter(spec.augment, data.mean, data.std)
    model = build_model(spec.model, data.num_classes)
    optimizer = build_optimizer(model, spec)
    n, batch = len(data.train_x), spec.train.batch_size
    steps_per_epoch = n // batch if n >= batch else 1
    scheduler = build_scheduler(optimizer, spec, steps_per_epoch)
    total = spec.train.epochs * steps_per_epoch
    factor = scheduler.lr_lambdas[0]
    marks = {0, 1, total // 2, total - 1, total, round(spec.schedule.warmup_epochs * steps_per_epoch)}
    marks |= {int(m * total) for m in spec.schedule.milestones}
    for s in sorted(marks):
        assert 0 <= factor(s) <= 1 and math.isfinite(factor(s)), (s, factor(s))
    if spec.swa.enabled:
        assert 0 <= spec.swa_start_epoch() < spec.train.epochs
    torch.manual_seed(spec.train.seed + total)  # the worker reseeds with seed + step

    x = augment.train(data.train_x[:batch])
    loss = F.cross_entropy(model(x), data.train_y[:batch], label_smoothing=spec.train.label_smoothing)
    loss.backward()
    if spec.train.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.train.grad_clip)
    optimizer.step()
    scheduler.step()
    model.eval()
    with torch.no_grad():
        model(augment.eval(data.test_x[: spec.train.eval_batch_size]))


@pytest.mark.slow  # many generated specs, each built and trained: minutes on 2 cores
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(valid_specs(COMPOSITE | CHEAP))
def test_a_spec_that_validates_builds_and_trains_or_names_a_usage_error(spec):
    try:
        build_and_step(spec)
    except Exception as exc:  # noqa: BLE001 - the point: only usage errors may come out
        assert isinstance(exc, UsageError), f"{type(exc).__name__}: {exc}"


TINY = ["data.image_size=8", "data.synthetic_train=8", "data.synthetic_test=4", "train.batch_size=2"]
CORNERS = {
    "thinnest SE ResNet": ["model.name=resnet18", "model.se=true", "model.se_reduction=256", "model.width=0.01"],
    "every augmentation at its limit": [
        "model.name=fastnet", "augment.translate=16", "augment.cutout=32", "augment.rotation=180",
        "augment.resized_crop.enabled=true", "augment.resized_crop.ratio=[0.01, 100]", "augment.resized_crop.scale=[1e-9, 1e-9]",
        "augment.erasing.p=1", "augment.erasing.ratio=[100, 100]", "augment.erasing.scale=[1, 1]"],
    "colour jitter as large as a float": [
        "model.name=resnet50", 'model.stem="3conv"', "model.width=0.05", "data.synthetic_classes=1000",
        "augment.color_jitter.p=1", "augment.color_jitter.brightness=1e300", "augment.color_jitter.contrast=1e300",
        "augment.color_jitter.saturation=1e300", "augment.color_jitter.hue=0.5"],
    "largest batch, two images": [
        "data.synthetic_train=2", "data.synthetic_test=1", "train.batch_size=65536", "train.eval_batch_size=65536",
        "train.label_smoothing=0.999999", "train.grad_clip=1e-300", "optim.lr=100", "optim.layer_lr.stem=1000"],
}


@pytest.mark.parametrize("sets", CORNERS.values(), ids=CORNERS.keys())
def test_the_corners_of_the_ranges_build_and_take_a_step(sets):
    build_and_step(load_spec(None, [*TINY, *sets]))


def test_a_layer_prefix_the_model_lacks_is_a_usage_error():
    """Which prefixes exist depends on the built model, so the worker finds this one, as a usage error."""
    spec = load_spec(None, ["optim.layer_lr.layer9=0.5"])
    with pytest.raises(UsageError, match="layer9"):
        build_and_step(spec)


TRAIN_QUICKLY = COMPOSITE | CHEAP | {"train.epochs": st.integers(1, 2), "swa.start": st.floats(0, 2, exclude_min=True),
                                     "swa.anneal_epochs": st.integers(0, 2), "evaluate.every": st.integers(1, 2)}


@pytest.mark.slow  # many generated specs, each built and trained: minutes on 2 cores
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(valid_specs(TRAIN_QUICKLY))
def test_a_spec_that_validates_trains_to_its_end_in_process(spec):
    from engine.train import Trainer

    try:
        trainer = Trainer(spec, None, log=lambda _m: None)
    except UsageError:
        return
    assert trainer.fit() in ("finished", "failed")  # failed: the non-finite guard stopped a diverging run


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(valid_specs(TRAIN_QUICKLY))
def test_a_spec_that_validates_runs_in_the_real_worker_without_a_crash(spec):
    """Through `cockpit run`: finished (0), a usage error (2), or a run the non-finite guard stopped (1)."""
    with tempfile.TemporaryDirectory() as tmp:
        preset = Path(tmp) / "hostile.toml"
        preset.write_text(dump_spec(spec))
        res = cockpit("run", str(preset), "--set", "train.threads=1", env={"COCKPIT_RUNS": str(Path(tmp) / "runs")})
        logs = "".join(p.read_text() for p in Path(tmp).glob("runs/*/worker.log"))
        assert res.returncode in (0, 1, 2), res.stdout + res.stderr
        if res.returncode != 2:  # the worker logs a usage error's traceback too; anything else is a crash
            assert "Traceback" not in logs + res.stderr, logs + res.stderr


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(valid_specs(COMPOSITE))
def test_a_spec_that_validates_reads_back_from_its_toml_unchanged(spec):
    """The worker reads spec.toml as the cockpit wrote it: any valid spec survives the trip."""
    assert parse_spec_text(dump_spec(spec, "header"), "spec.toml") == spec


def test_every_count_has_an_upper_bound():
    fields = leaves(RunSpec) | {p: f for cls in OPTIMIZER_SPECS.values() for p, f in leaves(cls, "optim.").items()}
    unbounded = [path for path, info in fields.items() if info.annotation is int and bounds(info)[1] is None]
    assert not unbounded
