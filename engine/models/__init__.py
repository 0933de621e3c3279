"""Model registry: `build_model(spec, num_classes)` from a `ModelSpec`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from torch import nn

from .resnet import resnet18, resnet34, resnet50
from .small import fastnet, tiny

if TYPE_CHECKING:
    from engine.spec import ModelSpec

__all__ = ["MODELS", "build_model"]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "tiny": tiny,
    "fastnet": fastnet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
}


def build_model(spec: ModelSpec, num_classes: int) -> nn.Module:
    """The spec's architecture for `num_classes`. `stem`, `se` and `se_reduction` apply to ResNets only."""
    factory = MODELS.get(spec.name)
    if factory is None:
        raise ValueError(f"unknown model {spec.name!r}; valid: {', '.join(MODELS)}")
    opts: dict = {"width": spec.width}
    if spec.name.startswith("resnet"):
        opts.update(stem=spec.stem, se=spec.se, se_reduction=spec.se_reduction)
    return factory(num_classes, **opts)
