"""Model registry: `build_model(spec, num_classes)` from a `ModelSpec`.

Names: the built-in nets below, `efficientnet_b0`..`efficientnet_b7` (torchvision's, adapted to
32x32), and `torchvision:<name>` for any torchvision classification model (see `zoo`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from torch import nn

from .efficientnet import VARIANTS as EFFICIENTNETS
from .efficientnet import efficientnet
from .options import apply_model_options
from .resnet import resnet18, resnet34, resnet50
from .small import fastnet, tiny
from .zoo import PREFIX as TORCHVISION_PREFIX
from .zoo import torchvision_model

if TYPE_CHECKING:
    from engine.spec import ModelSpec

__all__ = ["MODELS", "build_model"]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "tiny": tiny,
    "fastnet": fastnet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    **{name: efficientnet(name) for name in EFFICIENTNETS},
}


def build_model(spec: ModelSpec, num_classes: int, image_size: int = 32) -> nn.Module:
    """The spec's architecture for `num_classes`. `stem`, `se` and `se_reduction` apply to ResNets only,
    `block_channels` to fastnet."""
    if spec.name.startswith(TORCHVISION_PREFIX):
        return apply_model_options(torchvision_model(spec.name.removeprefix(TORCHVISION_PREFIX), num_classes, image_size), spec)
    factory = MODELS.get(spec.name)
    if factory is None:
        raise ValueError(f"unknown model {spec.name!r}; valid: {', '.join(MODELS)}")
    opts: dict = {"width": spec.width}
    if spec.name.startswith("resnet"):
        opts.update(stem=spec.stem, stem_channels=tuple(spec.stem_channels), stem_stride=spec.stem_stride, se=spec.se,
                    se_reduction=spec.se_reduction)
    if spec.name == "fastnet":
        opts.update(block_channels=tuple(spec.block_channels))
    return apply_model_options(factory(num_classes, **opts), spec)  # whitening, init, BatchNorm
