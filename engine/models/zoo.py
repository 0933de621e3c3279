"""Any torchvision classification model by name (`model.name = "torchvision:<name>"`), for small images.

The model is torchvision's own, built without pretrained weights for the dataset's classes. It is
adapted to 32x32 inputs the way CIFAR ResNets are: its first convolution runs at stride 1 and the
max-pool right after it (before any other convolution, where there is one) is dropped, so small
images keep their resolution into the first stage. Models with auxiliary heads (GoogLeNet,
Inception) are built without them, so that they return logits in training mode too. A model that
still cannot take the dataset's image size (Inception needs 75x75 or more, ViT and MaxViT 224x224)
or does not return [batch, classes] logits is refused with a message that says so, before any
training starts. The README's Models section lists what changes per family.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

from ..contracts import UsageError

__all__ = ["AUX_HEADS", "PREFIX", "ZooError", "classification_models", "torchvision_model"]

PREFIX = "torchvision:"
# models with auxiliary classifier heads: in training mode they return a named tuple (logits, aux...), which
# a training step cannot take; built without them (aux_logits=False) they return logits, as every other model
AUX_HEADS = frozenset({"googlenet", "inception_v3"})


class ZooError(UsageError, ValueError):
    """A torchvision model name that does not exist, or a model that cannot take the images."""


def classification_models() -> list[str]:
    """torchvision's classification models (not detection, segmentation, video or optical flow)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _adapt_to_small_images(model: nn.Module) -> None:
    """Stride 1 for the first conv; the first max-pool, if it comes before any other conv, goes.

    Modules are walked in the order they are defined, depth first (`named_modules`), which is the order
    the stem runs them: a pool beside a wrapped conv (shufflenet's `conv1` Sequential, then `maxpool`) is
    found after that conv, as it runs."""
    seen_conv = False
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if seen_conv:
                return
            module.stride, seen_conv = (1, 1), True
        elif isinstance(module, nn.MaxPool2d) and seen_conv:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, nn.Identity())
            return


def torchvision_model(name: str, num_classes: int, image_size: int = 32) -> nn.Module:
    """`torchvision.models.get_model(name)` for `num_classes`, adapted to `image_size` inputs."""
    import torchvision

    known = classification_models()
    if name not in known:
        near = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; {len(known)} exist (torchvision.models.list_models())"
        raise ZooError(f"model.name: torchvision has no classification model {name!r}{hint}")
    # init_weights=True: torchvision's own init for these (it warns that its default will change)
    extra = {"aux_logits": False, "init_weights": True} if name in AUX_HEADS else {}
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **extra)
    _adapt_to_small_images(model)
    _probe(model, name, num_classes, image_size)
    return model


def _probe(model: nn.Module, name: str, num_classes: int, image_size: int) -> None:
    """One forward pass in each mode on two blank images: the model must give [2, num_classes] logits in both
    (a model that cannot take the size, or whose training output is not a tensor, is refused here, before any
    training starts). The probe leaves no trace: BatchNorm statistics reset, the global RNG untouched."""
    was_training = model.training
    x = torch.zeros(2, 3, image_size, image_size)
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for training in (False, True):
                out = model.train(training)(x)
                if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
                    what = f"a {type(out).__name__}" if not isinstance(out, torch.Tensor) else f"shape {tuple(out.shape)}"
                    raise ZooError(f"model.name: torchvision:{name} gives {what} in {'training' if training else 'eval'} "
                                   f"mode, not [batch, {num_classes}] logits; this cockpit cannot train it")
    except (RuntimeError, ValueError, AssertionError) as exc:  # ViT checks its input size with torch._assert
        if isinstance(exc, ZooError):
            raise
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZooError(f"model.name: torchvision:{name} cannot take {image_size}x{image_size} images ({why})") from None
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
            m.reset_running_stats()  # the training-mode probe moved them
    model.train(was_training)
