"""CIFAR ResNets: ResNet18/34 (BasicBlock) and ResNet50 (Bottleneck), optional SE and 3-conv stem.

The CIFAR variant: a stride-1 3x3 stem and no max-pool, so 32x32 inputs reach layer4 at 4x4.
Top-level children are `stem`, `layer1`..`layer4`, `pool` (no parameters) and `fc`: per-layer
learning rates and the gradient-flow instruments select parameters by these name prefixes.
Every ReLU is its own `nn.ReLU` module (not in-place) and every SE gate an `nn.Sigmoid` module
named `gate`, so forward hooks can observe activations and gate values.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "SqueezeExcite", "scaled", "resnet18", "resnet34", "resnet50"]


def scaled(channels: int, width: float) -> int:
    """`channels * width`, rounded, at least 8 (so tiny widths keep usable BatchNorm statistics)."""
    return max(8, round(channels * width))


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[tuple[str, nn.Module]]:
    return [
        ("conv", nn.Conv2d(cin, cout, 3, stride, 1, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
        ("relu", nn.ReLU()),
    ]


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: scale channels by a gate computed from their global average."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """Two 3x3 convs; `planes` output channels."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, se_reduction: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SqueezeExcite(planes, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = _shortcut(cin, planes, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, as in torchvision's v1.5), 1x1 expand to 4 * `planes`."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, se_reduction: int = 0):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.se = SqueezeExcite(cout, se_reduction) if se_reduction else nn.Identity()
        self.shortcut = _shortcut(cin, cout, stride)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu3(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet.

    stem: "conv3x3" is one 3x3 conv-BN-ReLU to 64 channels; "3conv" is three, with `stem_channels`
    outputs (default 32, 32, 64; the guide's is 64, 64, 64). `stem_stride` is the first conv's stride
    (the guide's 2 halves a 32x32 image before layer1).
    se: a squeeze-and-excitation block on every residual branch, bottleneck `channels // se_reduction`.
    width: multiplies every channel count (see `scaled`).
    zero_init_residual: start each residual branch's last BN gamma at 0, so blocks begin as identities
    (helps large-batch training; off by default, as in torchvision).
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        depths: tuple[int, int, int, int],
        num_classes: int = 10,
        *,
        stem: str = "conv3x3",
        stem_channels: tuple[int, int, int] = (32, 32, 64),
        stem_stride: int = 1,
        se: bool = False,
        se_reduction: int = 16,
        width: float = 1.0,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if stem == "conv3x3":
            base = scaled(64, width)
            self.stem = nn.Sequential(OrderedDict(conv_bn_relu(3, base, stem_stride)))
        elif stem == "3conv":
            chans = [3, *(scaled(c, width) for c in stem_channels)]
            layers = [(f"{kind}{i + 1}", m) for i in range(3)
                      for kind, m in conv_bn_relu(chans[i], chans[i + 1], stem_stride if i == 0 else 1)]
            self.stem = nn.Sequential(OrderedDict(layers))
            base = chans[-1]
        else:
            raise ValueError(f"unknown stem {stem!r}; valid: conv3x3, 3conv")
        se_r = se_reduction if se else 0
        cin = base
        for i, (depth, stride) in enumerate(zip(depths, (1, 2, 2, 2))):
            planes = scaled(64 * 2**i, width)
            blocks = []
            for s in [stride] + [1] * (depth - 1):
                blocks.append(block(cin, planes, s, se_r))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.bn3.weight if isinstance(m, Bottleneck) else m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet18(num_classes: int = 10, **kw) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, **kw)


def resnet34(num_classes: int = 10, **kw) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, **kw)


def resnet50(num_classes: int = 10, **kw) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, **kw)
