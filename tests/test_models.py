"""Model zoo: shapes, gradients, parameter counts, naming contract, SE/stem/width options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine import spec as spec_mod
from engine.models import MODELS, build_model
from engine.spec import ModelSpec

TOP_LEVEL = {
    "tiny": ["stem", "block1", "block2", "pool", "fc"],
    "fastnet": ["stem", "block1", "block2", "block3", "pool", "fc"],
    **{f"resnet{d}": ["stem", "layer1", "layer2", "layer3", "layer4", "pool", "fc"] for d in (18, 34, 50)},
}
BUILTIN = list(TOP_LEVEL)  # the project's own nets (EfficientNet and torchvision's: tests/test_zoo.py)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convs are faster on one thread, and far faster when the CPUs are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build(name: str, num_classes: int = 10, **kw) -> nn.Module:
    return build_model(ModelSpec(name=name, **kw), num_classes)


def build_meta(name: str, num_classes: int = 10, **kw) -> nn.Module:
    """Structure only (names, shapes, counts): no memory, no init cost."""
    with torch.device("meta"):
        return build(name, num_classes, **kw)


def test_registry_matches_spec():
    assert tuple(MODELS) == spec_mod.MODELS


@pytest.mark.parametrize("name", BUILTIN)
def test_top_level_names(name):
    model = build_meta(name)
    assert [n for n, _ in model.named_children()] == TOP_LEVEL[name]
    assert not list(model.pool.parameters())
    assert all(n.split(".")[0] in TOP_LEVEL[name] for n, _ in model.named_parameters())


@pytest.mark.parametrize(
    "name,num_classes,width",
    [("tiny", 10, 1.0), ("tiny", 7, 0.5), ("fastnet", 10, 0.25), ("fastnet", 100, 0.125)]
    + [(f"resnet{d}", 7, 0.125) for d in (18, 34, 50)],
)
def test_forward_backward(name, num_classes, width):
    torch.manual_seed(0)
    model = build(name, num_classes, width=width)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, num_classes)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", BUILTIN)
def test_default_width_forward(name):
    model = build(name, 10, se=name == "resnet50").eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("side", [8, 13, 48])
def test_any_input_size(name, side):
    model = build(name, 3, width=0.125).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, side, side)).shape == (2, 3)


def test_known_param_counts():
    assert n_params(build_meta("resnet18")) == 11_173_962  # the CIFAR ResNet18 figure
    assert n_params(build_meta("resnet34")) == 21_282_122
    assert n_params(build_meta("resnet50")) == 23_520_842
    assert n_params(build_meta("resnet18", 100)) == 11_220_132
    assert 5_000 < n_params(build_meta("tiny")) < 100_000
    assert 1_500_000 < n_params(build_meta("fastnet")) < 2_500_000


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_se_adds_gates(name):
    plain, se = build_meta(name), build_meta(name, se=True, se_reduction=8)
    assert not any(isinstance(m, nn.Sigmoid) for m in plain.modules())
    gates = [n for n, m in se.named_modules() if isinstance(m, nn.Sigmoid)]
    assert len(gates) == sum(len(getattr(se, f"layer{i}")) for i in range(1, 5))
    assert all(g.endswith(".se.gate") for g in gates)
    assert n_params(se) > n_params(plain)


def test_se_gate_observable_by_hooks():
    model = build("resnet18", width=0.125, se=True, se_reduction=256).eval()  # hidden clamps to 1
    seen = []
    for m in model.modules():
        if isinstance(m, nn.Sigmoid):
            m.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert len(seen) == 8 and all(((g > 0) & (g < 1)).all() for g in seen)


def test_activation_modules_not_functional():
    for name in BUILTIN:
        model = build_meta(name)
        acts = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.GELU))]
        assert acts and not any(getattr(m, "inplace", False) for m in acts)


def test_stem_variants():
    convs = lambda m: [c for c in m.stem.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert len(convs(build_meta("resnet18"))) == 1
    deep = build_meta("resnet18", stem="3conv")
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs(deep)] == [
        (3, 32, (3, 3)),
        (32, 32, (3, 3)),
        (32, 64, (3, 3)),
    ]
    assert deep.stem.conv1.stride == (1, 1)
    assert len(convs(build_meta("resnet50", stem="3conv", width=2.0))) == 3


@pytest.mark.parametrize("name", BUILTIN)
def test_width_half_quarters_params(name):
    ratio = n_params(build_meta(name)) / n_params(build_meta(name, width=0.5))
    assert 3.0 < ratio < 4.5, ratio


def test_width_minimum_channels():
    model = build_meta("resnet18", width=0.01)
    assert model.stem.conv.out_channels == 8
    assert model.fc.in_features == 8


def test_unknown_name_lists_valid():
    with pytest.raises(ValueError) as err:
        build_model(ModelSpec.model_construct(name="vgg16"), 10)
    for name in MODELS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", ["tiny", "fastnet", "resnet18"])
def test_seeded_construction_deterministic(name):
    def state(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return build(name, width=0.25, se=True).state_dict()

    a, b, c = state(0), state(0), state(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_zero_init_residual():
    from engine.models.resnet import resnet18, resnet50

    for model in (resnet18(width=0.125, zero_init_residual=True), resnet50(width=0.125, zero_init_residual=True)):
        block = model.layer1[1]
        last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
        assert torch.count_nonzero(last_bn.weight) == 0



def test_fastnet_block_channels_and_a_stride_2_whitening_stem():
    """The CPU record's net: a 2x2 whitening stem on non-overlapping patches (32x32 -> 16x16, 24
    channels, nothing lost: 12 numbers per patch and their negatives), then conv groups of the given
    widths, each halving the side."""
    model = build("fastnet", block_channels=[48, 96, 192], whiten=2, whiten_stride=2)
    whiten = model.stem[0]
    assert whiten.stride == (2, 2) and whiten.out_channels == 24
    convs = [c for c in model.modules() if isinstance(c, nn.Conv2d) and c is not whiten]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(24, 48), (48, 48), (48, 96), (96, 96), (96, 192),
                                                               (192, 192)]
    sides = []
    for block in (model.stem, model.block1, model.block2, model.block3):
        block.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sides == [16, 8, 4, 2]
    # the default stays airbench94's layout
    assert [c.out_channels for c in build_meta("fastnet").modules() if isinstance(c, nn.Conv2d)][1::2] == [64, 256, 256]


@pytest.mark.parametrize("side,refused", [(12, True), (16, False)])
def test_a_strided_whitening_stem_must_leave_the_model_8_pixels(side, refused):
    """12x12 through a stride-2 2x2 stem is 6x6, and fastnet's three poolings would reach 0x0: the spec
    is refused, naming the field and a size that works; 16x16 (8x8 after the stem) trains."""
    sets = ["model.name=fastnet", "model.whiten=2", "model.whiten_stride=2", f"data.image_size={side}"]
    if refused:
        with pytest.raises(spec_mod.SpecError) as err:
            spec_mod.load_spec(None, sets)
        assert err.value.errors[0][0] == "model.whiten_stride" and "data.image_size to 16 or more" in str(err.value)
        return
    model = build_model(spec_mod.load_spec(None, sets).model, 10)
    model(torch.randn(2, 3, side, side)).sum().backward()
