"""EfficientNet for 32x32 images, built from torchvision's own EfficientNet.

torchvision's EfficientNet is made for 224x224: a stride-2 stem and four stride-2 stages take an
image down 32x, so a 32x32 CIFAR image would reach the last stages at 1x1. The usual small-image
adaptation, made here on torchvision's modules rather than on a copy of them: the stem convolution
runs at stride 1, so a 32x32 input reaches the head at 2x2.

The torchvision modules are re-parented so that the top-level children read like the ResNets'
(`stem`, `stage1`..`stage7`, `head`, `pool`, `fc`): per-group gradient norms, update ratios and
activation statistics then come per stage. Its activations are SiLU modules and its squeeze-and-
excitation gates Sigmoid modules, which the instruments watch.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EfficientNet32", "VARIANTS", "efficientnet"]

VARIANTS = tuple(f"efficientnet_b{i}" for i in range(8))


class EfficientNet32(nn.Module):
    """torchvision's `efficientnet_bN` (no pretrained weights) with a stride-1 stem."""

    def __init__(self, variant: str = "efficientnet_b0", num_classes: int = 10):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet {variant!r}; valid: {', '.join(VARIANTS)}")
        import torchvision

        tv = getattr(torchvision.models, variant)(weights=None, num_classes=num_classes)
        features = tv.features  # [stem, stage1 .. stage7, head 1x1 conv]
        stem_conv = features[0][0]
        stem_conv.stride = (1, 1)
        self.stem = features[0]
        self.stages = len(features) - 2
        for i in range(1, len(features) - 1):
            self.add_module(f"stage{i}", features[i])
        self.head = features[-1]
        self.pool = tv.avgpool
        self.fc = tv.classifier  # dropout, then the linear layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(1, self.stages + 1):
            x = getattr(self, f"stage{i}")(x)
        x = self.pool(self.head(x))
        return self.fc(torch.flatten(x, 1))


def efficientnet(variant: str):
    """A registry factory for one variant: `factory(num_classes, width=1.0)`."""

    def build(num_classes: int = 10, *, width: float = 1.0) -> EfficientNet32:
        if width != 1.0:
            raise ValueError(f"{variant} has its own width: model.width must be 1.0 (the bN variants scale it)")
        return EfficientNet32(variant, num_classes)

    build.__name__ = variant
    return build
