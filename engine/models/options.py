"""airbench's model options, applied to any built model: the whitening stem, dirac init and BatchNorm
settings (`model.whiten`, `model.init`, `model.bn_weight_frozen`, `model.bn_eps`, `model.bn_momentum`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .whitening import WhiteningConv, add_whitening

if TYPE_CHECKING:
    from engine.spec import ModelSpec

__all__ = ["apply_model_options", "dirac_init"]


def dirac_init(model: nn.Module) -> None:
    """airbench's conv init: PyTorch's default, then the first `in_channels` filters of each conv set to
    the identity (dirac), so every conv starts by passing its input through; biases zero."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not isinstance(m, WhiteningConv) and m.groups == 1:
            m.reset_parameters()
            nn.init.dirac_(m.weight.data[: m.in_channels])
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def apply_model_options(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """The spec's whitening stem, init and BatchNorm options on `model` (a no-op at the defaults)."""
    if spec.whiten:
        model = add_whitening(model, spec.whiten, spec.whiten_stride)
    if spec.init == "dirac":
        dirac_init(model)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.eps, m.momentum = spec.bn_eps, spec.bn_momentum
            if spec.bn_weight_frozen and m.weight is not None:
                nn.init.ones_(m.weight)
                m.weight.requires_grad_(False)
    return model
