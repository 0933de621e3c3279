"""What a run initialises from its training data once it is built: the whitening stem's filters (as
airbench94's `init_whitening_conv`), and the alternating flip done by the loader (the random flip is then off).

The model-side options live in engine/models/options.py, the optimizer side in engine/optim_groups.py,
lookahead in engine/train/lookahead.py, the weighted TTA views in engine/evaluate.py."""

from __future__ import annotations

import torch

from .augment import Augmenter
from .data import DeviceLoader
from .models.whitening import init_whitening
from .spec import AugmentSpec, RunSpec

WHITEN_IMAGES = 5000  # airbench94 estimates the patch covariance from the first 5,000 training images


def training_augment(spec: AugmentSpec) -> AugmentSpec:
    """The augmentation the Augmenter draws: without its random flip when the loader alternates flips."""
    return spec.model_copy(update={"flip": 0.0}) if spec.alternate_flip else spec


def init_from_data(model: torch.nn.Module, loader: DeviceLoader, augment: Augmenter, spec: RunSpec) -> None:
    """Before the DDP wrap: whitening filters from the (normalized) training images, and the loader's
    alternating flip. Every rank computes the same filters from the same images."""
    if spec.augment.alternate_flip:
        loader.use_alternate_flip()
    if spec.model.whiten:
        init_whitening(model, augment.eval(loader.x[:WHITEN_IMAGES]))
