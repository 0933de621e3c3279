"""Batched image ops on the device: x float [N, C, H, W] in [0, 1] and per-image parameters of
shape [N]; none syncs with the host. Colour formulas are torchvision's (transforms.v2.functional),
so tests can compare image by image."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Every op takes x float [N, C, H, W] in [0, 1] and per-image parameters of shape [N]; none syncs.
# Colour formulas are torchvision's (transforms.v2.functional) so tests can compare image by image.

_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


def to_float(x: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; floating input is taken as [0, 1] already (cast to float32)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"expected a uint8 or floating image batch, got {x.dtype}")
    return x.to(torch.float32)


def per_image(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def select(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """a where the float 0/1 `mask` is 1, else b (broadcasting); exact for finite a, b.

    Used instead of torch.where with a bool mask: ATen's bool kernels are not vectorized on CPU, and on a
    256x3x32x32 batch (2-core AVX2 VM, 1 thread) torch.where with a full bool mask measured 4.2 ms, lerp with a
    0/1 float weight 0.5 ms; comparisons straight into a float tensor (`_is`) 0.3 ms vs 0.85 ms + 1.4 ms cast.
    On CUDA both forms cost the same.
    """
    return torch.lerp(b, a, mask)


def channel_const(values: Sequence[float], device: torch.device) -> Tensor:
    """A small float32 constant built on the device by fill kernels: no host->device copy, so no sync."""
    return torch.stack([torch.full((), float(v), dtype=torch.float32, device=device) for v in values])


def _is(cmp, a: Tensor, b: Tensor) -> Tensor:
    """A comparison as a float 0/1 tensor, written directly (no bool intermediate); cmp is torch.ge, torch.lt..."""
    out = torch.empty(torch.broadcast_shapes(a.shape, b.shape), dtype=a.dtype, device=a.device)
    return cmp(a, b, out=out)


def rgb_to_gray(x: Tensor) -> Tensor:
    """Luma [N, 1, H, W] with torchvision's weights (a 1-channel batch is its own luma)."""
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return r.mul(_GRAY[0]).add_(g, alpha=_GRAY[1]).add_(b, alpha=_GRAY[2])


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision's _blend, factor * x + (1 - factor) * other, clamped to [0, 1]; one lerp kernel."""
    return torch.lerp(other, x, per_image(factor)).clamp_(0.0, 1.0)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return (x * per_image(factor)).clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    # mean of the luma image = luma of the per-channel means: one reduction, no luma image
    if x.shape[1] == 1:
        mean = x.mean(dim=(1, 2, 3))
    else:
        m = x.mean(dim=(2, 3))
        mean = m[:, 0] * _GRAY[0] + m[:, 1] * _GRAY[1] + m[:, 2] * _GRAY[2]
    return _blend(x, per_image(mean), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    return _blend(x, rgb_to_gray(x), factor)


_HUE_OFFSETS: dict[torch.device, Tensor] = {}


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the HSV hue by `shift` turns per image; same result as torchvision's adjust_hue (RGB->HSV->RGB).

    Closed form instead of a full HSV round trip: with v = max, m = min, c = v - m and h6 = hue * 6 in [0, 6),
    channel n in (R, G, B) = m + c * clamp(d - 1, 0, 1), where d is the distance from (h6 + n) to 2 around the
    circle of length 6 and n = (5, 3, 1). (aminmax and remainder are avoided: each measured several times slower on CPU
    than the max/min of channel slices and a floor-based wrap.)
    """
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    # (in-place ops on this function's own temporaries: on CPU every fresh multi-MB buffer costs page faults)
    v = torch.maximum(r, g)
    v = torch.maximum(v, b, out=v)
    lo = torch.minimum(r, g)
    lo = torch.minimum(lo, b, out=lo)
    c = v - lo
    inv_c = c.clamp_min(1e-12).reciprocal_()  # c == 0 (gray): every numerator below is 0 too, the hue is moot
    # h6 by the channel holding the max, with torchvision's priority on ties: red, then green, then blue
    h6 = select(_is(torch.ge, g, v), (b - r).mul_(inv_c).add_(2.0), (r - g).mul_(inv_c).add_(4.0))
    h6 = select(_is(torch.ge, r, v), (g - b).mul_(inv_c), h6)
    h6 = h6.add_(per_image(shift) * 6.0)
    h6 = h6.sub_(torch.floor(h6 * (1.0 / 6.0)).mul_(6.0))  # wrap into [0, 6)
    offsets = _HUE_OFFSETS.get(x.device)
    if offsets is None:  # n - 2 for n = (5, 3, 1)
        offsets = _HUE_OFFSETS[x.device] = channel_const((3.0, 1.0, -1.0), x.device).view(1, 3, 1, 1)
    k = h6 + offsets  # (h6 + n) - 2, in [-1, 9)
    d = torch.minimum(k.sub(6.0).abs_(), k.abs_(), out=k)  # circular distance to 2 (the nearer of 2 and 8)
    return torch.addcmul(lo.sub_(c), c, d.clamp_(1.0, 2.0))  # m + c * (clamp(d, 1, 2) - 1)


def rotate(x: Tensor, degrees: Tensor) -> Tensor:
    """Rotate each image counter-clockwise by its angle about the centre; nearest, fill 0 (torchvision's rotate)."""
    n, _, h, w = x.shape
    rad = degrees.to(torch.float32) * (math.pi / 180.0)
    cos, sin = torch.cos(rad).view(n, 1, 1), torch.sin(rad).view(n, 1, 1)
    # output -> input map in normalized coordinates (align_corners=False): pixel centres at (2i + 1) / size - 1.
    # The h/w factors keep it a rotation in pixel space for non-square images. Built directly rather than by
    # F.affine_grid, whose batched [H*W, 3] x [3, 2] matmul measured ~10x slower on CPU.
    xs = (torch.arange(w, device=x.device, dtype=torch.float32) * 2 + 1) / w - 1
    ys = ((torch.arange(h, device=x.device, dtype=torch.float32) * 2 + 1) / h - 1)[:, None]
    gx = cos * xs - (sin * (h / w)) * ys
    gy = (sin * (w / h)) * xs + cos * ys
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def sample_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    device: torch.device | str,
    *,
    erasing: bool = False,
    attempts: int = 10,
) -> Tensor:
    """Per-image boxes [N, 4] = (top, left, height, width) in pixels (float), sampled like torchvision.

    RandomResizedCrop (erasing=False): area ~ U(scale) * H * W, log aspect (w/h) ~ U(log ratio), w and h
    rounded; the first of `attempts` tries that fits (0 < w <= W, 0 < h <= H) wins, else torchvision's
    centre-crop fallback. RandomErasing (erasing=True): aspect is h/w, a try fits when h < H and w < W,
    and when none fits the box is empty (h = w = 0: nothing erased). Position is uniform where the box fits.
    """
    area = height * width
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    u = torch.rand(n, attempts, 2, device=device)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(lo + (hi - lo) * u[..., 1])
    long_side, short_side = torch.round(torch.sqrt(target * aspect)), torch.round(torch.sqrt(target / aspect))
    if erasing:
        h, w = long_side, short_side
        fits = (h < height) & (w < width)
    else:
        w, h = long_side, short_side
        fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits & (fits.cumsum(dim=1) == 1)  # one-hot of the first try that fits (no argmax tie rules)
    found = fits.any(dim=1)
    h = (h * first).sum(dim=1)
    w = (w * first).sum(dim=1)
    if erasing:
        fallback_h = fallback_w = 0.0
    else:
        in_ratio = width / height
        if in_ratio < min(ratio):
            fallback_w, fallback_h = width, round(width / min(ratio))
        elif in_ratio > max(ratio):
            fallback_h, fallback_w = height, round(height * max(ratio))
        else:
            fallback_w, fallback_h = width, height
    h = torch.where(found, h, float(fallback_h))
    w = torch.where(found, w, float(fallback_w))
    pos = torch.rand(n, 2, device=device)
    top = torch.minimum(torch.floor(pos[:, 0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(pos[:, 1] * (width - w + 1)), width - w)
    if not erasing:  # the fallback is centred, not random
        top = torch.where(found, top, float((height - fallback_h) // 2))
        left = torch.where(found, left, float((width - fallback_w) // 2))
    return torch.stack([top, left, h, w], dim=1)


def crop_axis(start: Tensor, length: Tensor, size: int) -> Tensor:
    """Normalized sample coordinates [N, size] that resize [start, start + length) to `size` pixels.

    Bilinear, half-pixel centres, clamped to the box's edge pixels: torchvision's crop then resize.
    """
    u = torch.arange(size, device=start.device, dtype=torch.float32) + 0.5
    src = start[:, None] + u[None, :] * (length / size)[:, None] - 0.5
    src = torch.minimum(torch.maximum(src, start[:, None]), (start + length - 1)[:, None])
    return (2.0 * src + 1.0) / size - 1.0


def sample_grid(x: Tensor, gy: Tensor, gx: Tensor) -> Tensor:
    n, _, h, w = x.shape
    grid = torch.stack([gx[:, None, :].expand(n, h, w), gy[:, :, None].expand(n, h, w)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def resized_crop(x: Tensor, boxes: Tensor) -> Tensor:
    """Crop each image to its box (top, left, height, width) and resize back to H x W (bilinear)."""
    _, _, h, w = x.shape
    return sample_grid(x, crop_axis(boxes[:, 0], boxes[:, 2], h), crop_axis(boxes[:, 1], boxes[:, 3], w))


def source_index(size: int, n: int, shift: Tensor | None, flip: Tensor | None, reflect: bool, device):
    """For each output pixel along one axis, the source pixel after `translate` then `flip`.

    Returns (index [N, size] long, valid [N, size] bool or None); invalid = zero padding.
    """
    u = torch.arange(size, device=device)
    src = u.expand(n, size)
    if flip is not None:
        src = torch.where(flip[:, None], size - 1 - u, u)
    if shift is None:
        return src, None
    src = src + shift[:, None]
    if reflect:  # mirror about the edge pixels, like F.pad(mode="reflect"); exact for |shift| < size
        src = (size - 1) - ((size - 1) - src.abs()).abs()
        return src.clamp(0, size - 1), None
    valid = (src >= 0) & (src < size)
    return src.clamp(0, size - 1), valid
