"""airbench's whitening stem: a frozen k x k conv whose filters are the eigenvectors of the training
patches' covariance (scaled to unit variance, and their negatives), then a GELU.

`add_whitening(model, k)` puts it in front of any model: fastnet's conv-BN-act stem is replaced by it
(as in airbench94, block1 takes its 2*3*k*k channels); elsewhere the first 3-channel conv is made to
take those channels and the whitening goes in front of it. `init_whitening(model, images)` sets the
filters from normalized training images (engine.setup calls it before the DDP wrap). The weight
never trains (`requires_grad` False); the bias trains for `model.whiten_bias_epochs`, after which its
param group's LR is 0 (engine/optim.py), so resuming and the optimizer state need no special case.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WhiteningConv", "add_whitening", "init_whitening", "whitening_layers", "whitening_width"]


def whitening_width(k: int, channels: int = 3) -> int:
    return 2 * channels * k * k


class WhiteningConv(nn.Conv2d):
    """k x k conv, no padding, 2*C*k*k output channels; the weight is frozen."""

    def __init__(self, k: int, channels: int = 3, stride: int = 1):
        super().__init__(channels, whitening_width(k, channels), k, stride=stride, padding=0, bias=True)
        self.weight.requires_grad_(False)
        nn.init.zeros_(self.bias)


def _first_rgb_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, m in model.named_modules():
        for child_name, child in m.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3 and child.groups == 1:
                return m, child_name, child
    raise ValueError(f"{type(model).__name__} has no 3-channel conv to put the whitening stem in front of")


def _retarget(conv: nn.Conv2d, cin: int) -> nn.Conv2d:
    """The same conv (kernel, stride, padding, bias) taking `cin` channels, freshly initialised."""
    new = nn.Conv2d(cin, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    bias=conv.bias is not None, padding_mode=conv.padding_mode)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def add_whitening(model: nn.Module, k: int, stride: int = 1) -> nn.Module:
    """Put a k x k whitening stem (and a GELU) with `stride` in front of `model`; returns the model."""
    from .small import FastNet

    width = whitening_width(k)
    if isinstance(model, FastNet):  # airbench94's layout: the whitening replaces the stem
        model.stem = nn.Sequential(WhiteningConv(k, stride=stride), nn.GELU())
        model.block1[0] = _retarget(model.block1[0], width)
        return model
    parent, name, conv = _first_rgb_conv(model)
    setattr(parent, name, nn.Sequential(WhiteningConv(k, stride=stride), nn.GELU(), _retarget(conv, width)))
    return model


def whitening_layers(model: nn.Module) -> list[WhiteningConv]:
    return [m for m in model.modules() if isinstance(m, WhiteningConv)]


@torch.no_grad()
def init_whitening(model: nn.Module, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set every whitening layer's filters from normalized float images [N, C, H, W]: the
    eigenvectors of the k x k patch covariance divided by sqrt(eigenvalue + eps), and their negatives."""
    for layer in whitening_layers(model):
        c, (h, w) = layer.in_channels, layer.kernel_size
        x = images.to(layer.weight.device, torch.float32)
        patches = x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w)  # float32, as airbench
        cov = (patches.T @ patches).double() / patches.shape[0]  # eigh in float64
        values, vectors = torch.linalg.eigh(cov)
        values, vectors = values.flip(0), vectors.T.flip(0).reshape(c * h * w, c, h, w)
        scaled = vectors / (values.clamp_min(0) + eps).sqrt().view(-1, 1, 1, 1)
        layer.weight.copy_(torch.cat((scaled, -scaled)).to(layer.weight.dtype))
