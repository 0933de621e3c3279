"""What a run initialises from its training data once it is built: the whitening stem's filters (as
airbench94's `init_whitening_conv`), and the alternating flip done by the loader (the random flip is then off).

The model-side options live in engine/models/options.py, the optimizer side in engine/optim_groups.py,
lookahead in engine/train/lookahead.py, the weighted TTA views in engine/evaluate.py."""

from __future__ import annotations

import torch

from .augment import Augmenter
from .data import DeviceLoader
from .data.common import mix_seed
from .models.whitening import init_whitening
from .spec import AugmentSpec, RunSpec

WHITEN_IMAGES = 5000  # airbench94 estimates the patch covariance from 5,000 images of its shuffled training set


def training_augment(spec: AugmentSpec) -> AugmentSpec:
    """The augmentation the Augmenter draws: without its random flip when the loader alternates flips."""
    return spec.model_copy(update={"flip": 0.0}) if spec.alternate_flip else spec


def whitening_sample(n_images: int, seed: int, k: int = WHITEN_IMAGES) -> torch.Tensor:
    """Indices of the `k` training images the whitening stem is estimated from: a random draw with the
    run's seed (a CPU generator, so every rank draws the same). Not the first k: a folder dataset is
    stored class by class, and its first 5,000 images are one class."""
    g = torch.Generator().manual_seed(mix_seed(seed, 0x3417E))
    return torch.randperm(n_images, generator=g)[:k]


def init_from_data(model: torch.nn.Module, loader: DeviceLoader, augment: Augmenter, spec: RunSpec) -> None:
    """Before the DDP wrap: whitening filters from the (normalized) training images, and the loader's
    alternating flip. Every rank computes the same filters from the same images (`whitening_sample`)."""
    if spec.augment.alternate_flip:
        loader.use_alternate_flip()
    if spec.model.whiten:
        sample = whitening_sample(len(loader.x), spec.train.seed, WHITEN_IMAGES).to(loader.x.device)
        init_whitening(model, augment.eval(loader.x[sample]))
