"""Small thumbnails of images for viewers that cannot read the data set (the TUI never imports torch
or numpy): an image [C, H, W] uint8 is average-pooled to SIZE x SIZE and stored as base64 of its RGB
bytes, row by row (cockpit.core.thumbs decodes them)."""

from __future__ import annotations

import base64

import torch
import torch.nn.functional as F

SIZE = 16  # 16x16 RGB: 768 bytes, 1,024 characters stored; a terminal draws it in 16x8 half blocks
MAX_THUMBS = 8  # only the hardest few carry one (the store budget: about 8 kB per evaluation)


def thumbnails(images: torch.Tensor, size: int = SIZE) -> list[str]:
    """base64 RGB thumbnails of uint8 images [N, C, H, W] (one grey channel is repeated); one transfer."""
    if images.numel() == 0:
        return []
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = F.adaptive_avg_pool2d(x[:, :3], size).round().clamp(0, 255).to(torch.uint8)
    rows = x.permute(0, 2, 3, 1).contiguous().cpu()  # [N, size, size, 3]: RGB per pixel, row-major
    return [base64.b64encode(bytes(r.flatten().tolist())).decode("ascii") for r in rows]
