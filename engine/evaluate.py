"""Evaluation: logits over a held-out set, loss and accuracy."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EvalResult:
    loss: float
    acc: float
    logits: torch.Tensor  # [N, classes], float32, on the device
    targets: torch.Tensor


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, prepare: Callable[[torch.Tensor], torch.Tensor],
            amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> torch.Tensor:
    """Logits (float32) for every image in x (uint8 [N,C,H,W] on the model's device)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = prepare(x[i : i + batch_size])
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast_for(xb.device, amp_dtype):
            out.append(model(xb).float())
    model.train(was_training)
    if not out:
        return torch.empty(0, 0, device=x.device)
    return torch.cat(out)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             prepare: Callable[[torch.Tensor], torch.Tensor], amp_dtype: torch.dtype | None = None,
             channels_last: bool = False) -> EvalResult:
    logits = predict(model, x, batch_size, prepare, amp_dtype, channels_last)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    return EvalResult(loss, acc, logits, y)
