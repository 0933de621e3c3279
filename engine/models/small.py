"""Small conv nets: `tiny` for CPU smoke runs, `fastnet` for CIFAR-10 speed runs.

Both have top-level children `stem`, `block1`.., `pool` (no parameters) and `fc`, use activation
modules (not functionals) so hooks can attach, and end in global pooling, so any input side >= 8
and any number of classes work.
"""

from __future__ import annotations

import torch
from torch import nn

from .resnet import scaled

__all__ = ["TinyNet", "FastNet", "tiny", "fastnet"]


def _init_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class TinyNet(nn.Module):
    """Three 3x3 conv-BN-ReLU layers (16, 32, 64 channels): a stride-2 stem, then max-pool + conv twice.

    About 24k parameters at width 1. Nothing runs at full resolution, so a 128-image 32x32 batch
    trains (forward + backward) in about 30 ms on one CPU core.
    """

    def __init__(self, num_classes: int = 10, *, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = (scaled(c, width) for c in (16, 32, 64))
        self.stem = nn.Sequential(nn.Conv2d(3, c1, 3, 2, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU())
        self.block1 = self._block(c1, c2)
        self.block2 = self._block(c2, c3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c3, num_classes)
        _init_bn(self)

    @staticmethod
    def _block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class ConvGroup(nn.Sequential):
    """airbench's group: conv, max-pool, BN, act, conv, BN, act (pooling before BN halves its cost)."""

    def __init__(self, cin: int, cout: int, act: type[nn.Module] = nn.GELU):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(cout),
            act(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            act(),
        )


class FastNet(nn.Module):
    """The airbench94 network (Keller Jordan) without its data-dependent whitening layer.

    A 3x3 conv-BN-act stem (32 channels), three ConvGroups (`block_channels`: 64, 256, 256), global max-pool and a
    bias-free linear head whose logits are multiplied by `logit_scale` (airbench's 1/9 by default;
    pass 1.0 to turn it off). About 2.0M parameters at width 1.
    """

    def __init__(
        self, num_classes: int = 10, *, width: float = 1.0, act: type[nn.Module] = nn.GELU, logit_scale: float = 1 / 9,
        block_channels: tuple[int, int, int] = (64, 256, 256),
    ):
        super().__init__()
        c0, c1, c2, c3 = (scaled(c, width) for c in (32, *block_channels))
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0), act())
        self.block1 = ConvGroup(c0, c1, act)
        self.block2 = ConvGroup(c1, c2, act)
        self.block3 = ConvGroup(c2, c3, act)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(c3, num_classes, bias=False)
        self.logit_scale = logit_scale
        _init_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.logit_scale


def tiny(num_classes: int = 10, **kw) -> TinyNet:
    return TinyNet(num_classes, **kw)


def fastnet(num_classes: int = 10, **kw) -> FastNet:
    return FastNet(num_classes, **kw)
