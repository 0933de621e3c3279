"""The training loss: cross-entropy with label smoothing in PyTorch's form or the tuning guide's.

PyTorch's `label_smoothing=s` mixes the one-hot target with the uniform distribution: the true class
gets 1 - s + s/K and every class s/K. The guide's `LabelSmoothingLoss` gives the true class 1 - s and
spreads s over the other K - 1 classes only (s/(K-1) each). Both are a cross-entropy against a soft
target; they differ by a little on the true class.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F

__all__ = ["SmoothingForm", "cross_entropy", "loss_fn"]

SmoothingForm = Literal["torch", "guide"]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0,
                  form: SmoothingForm = "torch", reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of `logits` [N, K] against class indices with label smoothing of either form."""
    if form == "torch" or smoothing == 0.0:
        return F.cross_entropy(logits, target, label_smoothing=smoothing, reduction=reduction)
    k = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    true = logp.gather(1, target.unsqueeze(1)).squeeze(1)
    others = logp.sum(1) - true
    loss = -(1.0 - smoothing) * true - smoothing / (k - 1) * others
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def loss_fn(smoothing: float, form: SmoothingForm) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The spec's training loss as a function of (logits, targets), mean over the batch."""
    return lambda logits, target: cross_entropy(logits, target, smoothing, form)
