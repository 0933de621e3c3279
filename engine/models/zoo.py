"""Any torchvision classification model by name (`model.name = "torchvision:<name>"`), for small images.

The model is torchvision's own, built without pretrained weights for the dataset's classes. It is
adapted to 32x32 inputs the way CIFAR ResNets are: its first convolution runs at stride 1 and the
max-pool right after the stem (where there is one) is dropped, so small images keep their
resolution into the first stage. A model that still cannot take the dataset's image size (one
that needs 75x75 or more) is refused with a message that says so, before any training starts.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from ..contracts import UsageError

__all__ = ["PREFIX", "ZooError", "classification_models", "torchvision_model"]

PREFIX = "torchvision:"


class ZooError(UsageError, ValueError):
    """A torchvision model name that does not exist, or a model that cannot take the images."""


def classification_models() -> list[str]:
    """torchvision's classification models (not detection, segmentation, video or optical flow)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _adapt_to_small_images(model: nn.Module) -> None:
    """Stride 1 for the first conv; the first max-pool, if it comes before any other conv, goes."""
    convs_seen = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and convs_seen == 0:
                convs_seen = 1
                child.stride = (1, 1)
            elif isinstance(child, nn.MaxPool2d) and convs_seen == 1:
                setattr(parent, name, nn.Identity())
                return
            elif isinstance(child, nn.Conv2d):
                return


def torchvision_model(name: str, num_classes: int, image_size: int = 32) -> nn.Module:
    """`torchvision.models.get_model(name)` for `num_classes`, adapted to `image_size` inputs."""
    import torchvision

    known = classification_models()
    if name not in known:
        near = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; {len(known)} exist (torchvision.models.list_models())"
        raise ZooError(f"model.name: torchvision has no classification model {name!r}{hint}")
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    _adapt_to_small_images(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, 3, image_size, image_size))
    except (RuntimeError, ValueError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZooError(f"model.name: torchvision:{name} cannot take {image_size}x{image_size} images ({why})") from None
    model.train(was_training)
    return model
