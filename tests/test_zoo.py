"""EfficientNet and torchvision's models, adapted to 32x32 images, with the instruments on them."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from engine.instruments import layer_groups
from engine.models.efficientnet import EfficientNet32, efficientnet
from engine.models.zoo import ZooError, torchvision_model
from engine.passes import ensemble_runs
from engine.spec import ModelSpec, SpecError, load_spec
from engine.store import Run

from .conftest import ROOT


def test_efficientnet_keeps_small_images_at_a_useful_resolution():
    model = EfficientNet32("efficientnet_b0", num_classes=7)
    assert model.stem[0].stride == (1, 1)  # torchvision's is 2: 32x32 would reach the head at 1x1
    sizes = []
    model.head.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert sizes == [(2, 2)]
    # the instruments group parameters per stage, like a ResNet's layers
    assert list(layer_groups(model)) == ["stem", *[f"stage{i}" for i in range(1, 8)], "head", "fc"]
    assert any(isinstance(m, nn.Sigmoid) for m in model.modules())  # SE gates the instruments report
    with pytest.raises(ValueError, match="model.width must be 1.0"):
        efficientnet("efficientnet_b0")(10, width=0.5)


def test_torchvision_models_are_adapted_like_cifar_resnets():
    model = torchvision_model("resnet18", num_classes=10)
    assert model.conv1.stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert list(layer_groups(model)) == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    mobile = torchvision_model("mobilenet_v3_small", num_classes=5)
    assert mobile.features[0][0].stride == (1, 1)


def test_a_wrong_or_unfit_torchvision_name_is_a_clear_usage_error():
    with pytest.raises(ZooError, match=r"no classification model 'resnet19'; did you mean resnet18"):
        torchvision_model("resnet19", 10)
    with pytest.raises(ZooError, match=r"no classification model 'maskrcnn_resnet50_fpn'"):
        torchvision_model("maskrcnn_resnet50_fpn", 10)  # detection, not classification
    with pytest.raises(ZooError, match=r"inception_v3 cannot take 32x32 images"):  # and no FutureWarning
        torchvision_model("inception_v3", 10)


def test_the_spec_names_them():
    assert ModelSpec(name="efficientnet_b0").name == "efficientnet_b0"
    assert ModelSpec(name="torchvision:mobilenet_v3_small").name == "torchvision:mobilenet_v3_small"
    for bad, why in [("vgg16", "unknown model"), ("torchvision:", "must be followed by"),
                     ("torchvision:../x", "must be followed by")]:
        with pytest.raises(SpecError, match=why):
            load_spec(None, [f'model.name="{bad}"'])
    with pytest.raises(SpecError, match="model.width: is 0.5, but efficientnet_b0 keeps its own width"):
        load_spec(None, ['model.name="efficientnet_b0"', "model.width=0.5"])


@pytest.mark.slow
def test_efficientnet_and_a_torchvision_model_train_and_ensemble(tmp_path):
    """Both train end to end in the real worker (instruments on), and ensemble like any run."""
    small = ["data.synthetic_train=64", "data.synthetic_test=32", "train.batch_size=32", "train.epochs=1",
             "train.threads=1", "monitor.every=1", "monitor.activations_every=1", "monitor.grad_flow_every=1"]
    runs = []
    for name in ("efficientnet_b0", "torchvision:resnet18"):
        run = Run.create(tmp_path / "runs", load_spec(None, small + [f'model.name="{name}"']))
        proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert run.state() == "finished" and run.series("test_acc")
        names = set(run.metric_names())
        assert {"grad_norm/fc", "act/saturation"} <= names  # per-group and activation instruments ran
        runs.append(run)
    assert any(n.startswith("grad_norm/stage") for n in runs[0].metric_names())
    result = ensemble_runs(runs, store=False)
    assert [m.run for m in result.members] == [r.run_id for r in runs]


# ------------------------------------------------------------- every name the spec accepts, one step

def _one_step(name: str) -> tuple[float, float]:
    """Build `name` through the spec and the real setup, take one real training step (instruments on) on
    four 32x32 images; (the step's loss, the largest change of any parameter)."""
    from engine.instruments import Instruments
    from engine.setup import build
    from engine.train.step import Step

    spec = load_spec(None, [f'model.name="{name}"', "data.synthetic_train=4", "data.synthetic_test=2",
                            "train.batch_size=4", "train.threads=1", "monitor.every=1", "monitor.grad_flow_every=1"])
    parts = build(spec)
    before = [p.detach().clone() for p in parts.model.parameters()]
    step = Step(parts, Instruments(parts.model, spec.monitor, parts.device, grad_clip=spec.train.grad_clip), 0.0)
    xb, yb, _ = next(iter(parts.train_loader.epoch_batches(0, 0)))
    out = step(parts.prepare(xb), yb, 1)
    moved = max(float((p.detach() - b).abs().max()) for p, b in zip(parts.model.parameters(), before))
    return float(out.loss), moved


def _torchvision_names() -> list[str]:
    from engine.models.zoo import classification_models

    return classification_models()


# the names torchvision builds for a fixed input size (ViT and MaxViT: 224; Inception: 75 and more): refused
# with a message at build time, before any step; every other name must train
REFUSED_AT_32 = {"inception_v3", "maxvit_t", "vit_b_16", "vit_b_32", "vit_h_14", "vit_l_16", "vit_l_32"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny", "fastnet", "resnet18", "resnet34", "resnet50",
                                  *[f"efficientnet_b{i}" for i in range(8)],
                                  *[f"torchvision:{n}" for n in _torchvision_names()]])
def test_every_model_the_spec_accepts_trains_one_step_or_is_refused_at_build(name):
    torch.manual_seed(0)
    bare = name.removeprefix("torchvision:")
    if bare in REFUSED_AT_32 and name.startswith("torchvision:"):
        with pytest.raises(ZooError, match=rf"torchvision:{bare} cannot take 32x32 images"):
            _one_step(name)
        return
    loss, moved = _one_step(name)
    assert math.isfinite(loss) and moved > 0, (loss, moved)


@pytest.mark.slow
def test_googlenet_trains_on_its_logits_and_the_probe_leaves_no_trace():
    """Its training output was a named tuple (logits and two auxiliary heads): built without the heads."""
    torch.manual_seed(0)
    model = torchvision_model("googlenet", 10)
    assert model.aux1 is None and model.aux2 is None and isinstance(model.maxpool1, nn.Identity)
    assert model.conv1.conv.stride == (1, 1)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert int(bn.num_batches_tracked) == 0 and torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    out = model.train()(torch.rand(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_shufflenet_drops_its_max_pool_as_the_docstring_says():
    model = torchvision_model("shufflenet_v2_x0_5", 10)
    assert model.conv1[0].stride == (1, 1) and isinstance(model.maxpool, nn.Identity)
    sizes = []
    model.stage2.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
    model(torch.zeros(2, 3, 32, 32))
    assert sizes == [(16, 16)]  # 32 at stride 1, halved once by stage2 (with the pool it was 8x8)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torchvision's default GoogLeNet init, as built here on purpose
def test_a_model_whose_training_output_is_not_logits_is_refused_when_built(monkeypatch):
    """Any other model that gives a tuple in training mode is refused before training, naming what it gives."""
    from engine.models import zoo

    monkeypatch.setattr(zoo, "AUX_HEADS", frozenset())  # googlenet as torchvision builds it by default
    with pytest.raises(ZooError, match=r"torchvision:googlenet gives a GoogLeNetOutputs in training mode, not "
                                       r"\[batch, 10\] logits"):
        zoo.torchvision_model("googlenet", 10)
