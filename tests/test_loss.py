"""Label smoothing: the guide's form against the guide's own LabelSmoothingLoss, PyTorch's against torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.loss import cross_entropy


class GuideLabelSmoothingLoss(nn.Module):
    """The guide's section 4 code, as printed there."""

    def __init__(self, classes=10, smoothing=0.1):
        super().__init__()
        self.confidence = 1.0 - smoothing
        self.smoothing = smoothing
        self.classes = classes

    def forward(self, pred, target):
        pred = pred.log_softmax(dim=-1)
        with torch.no_grad():
            true_dist = torch.zeros_like(pred)
            true_dist.fill_(self.smoothing / (self.classes - 1))
            true_dist.scatter_(1, target.data.unsqueeze(1), self.confidence)
        return torch.mean(torch.sum(-true_dist * pred, dim=-1))


@pytest.mark.parametrize("classes, smoothing", [(10, 0.1), (100, 0.2), (2, 0.05)])
def test_the_guide_form_equals_the_guide_s_code(classes, smoothing):
    g = torch.Generator().manual_seed(classes)
    logits = torch.randn(64, classes, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, classes, (64,), generator=g)
    ours = cross_entropy(logits, target, smoothing, "guide")
    theirs = GuideLabelSmoothingLoss(classes, smoothing)(logits, target)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    # and the gradients the step will follow agree too
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    cross_entropy(a, target, smoothing, "guide").backward()
    GuideLabelSmoothingLoss(classes, smoothing)(b, target).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)


def test_the_torch_form_is_pytorch_s_and_the_forms_differ():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(32, 10, generator=g), torch.randint(0, 10, (32,), generator=g)
    torch.testing.assert_close(cross_entropy(logits, target, 0.1, "torch"),
                               F.cross_entropy(logits, target, label_smoothing=0.1))
    assert not torch.allclose(cross_entropy(logits, target, 0.1, "torch"), cross_entropy(logits, target, 0.1, "guide"))
    # no smoothing: both are the plain cross-entropy
    torch.testing.assert_close(cross_entropy(logits, target, 0.0, "guide"), F.cross_entropy(logits, target))


def test_per_sample_losses_for_the_difficulty_instrument():
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(8, 10, generator=g), torch.randint(0, 10, (8,), generator=g)
    per_sample = cross_entropy(logits, target, 0.1, "guide", reduction="none")
    assert per_sample.shape == (8,)
    torch.testing.assert_close(per_sample.mean(), cross_entropy(logits, target, 0.1, "guide"))
