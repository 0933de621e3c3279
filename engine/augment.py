"""Batched, sync-free training augmentation on the device that holds the data.

`Augmenter(spec, mean, std)` turns an `AugmentSpec` into two calls:

* `train(x)`: a uint8 (or float in [0, 1]) batch [N, C, H, W] in, a float32 batch out, every image
  with its own random draw, in the order of the guide's torchvision pipeline (see `GUIDE_PIPELINE`):

      RandomResizedCrop -> translate (pad + random crop) -> horizontal flip -> ColorJitter (RandomApply)
      -> RandomGrayscale -> RandomRotation -> [to float in [0, 1]] -> Normalize -> RandomErasing -> cutout

* `eval(x)`: the deterministic part only: to float in [0, 1], then Normalize (when `spec.normalize`).

`train` is `apply(x, sample(...))`: `sample` draws every per-image parameter up front (an `AugmentParams`,
handy for tests and for logging what an image got) and `apply` is a pure function of x and the params.

Rules the code keeps (so a training loop never stalls on it):

* Randomness comes only from torch's global RNG *on x's device* (`torch.rand(..., device=x.device)`), so a run
  seeded with `torch.manual_seed` is reproducible, and no host RNG or host->device copy sits in the hot path.
* No host synchronisation: no `.item()`, `.tolist()`, `.cpu()`, `nonzero()`, boolean-mask indexing or Python
  branching on tensor values. Per-image choices are applied with 0/1 masks (`select`), index maps and one
  `grid_sample` per resampling step. Python only branches on the spec (fixed at construction).
* A disabled op costs nothing: it is not in `self.ops`, draws no random numbers and launches no kernel.

Deliberate differences from torchvision's per-image pipeline (all statistically negligible for training):

* The batch is converted to float once, up front, instead of after RandomRotation: every op here works in
  float [0, 1], whereas torchvision's PIL path rounds to uint8 after each op. The scale is linear, so only
  that intermediate rounding differs.
* ColorJitter applies brightness, contrast, saturation, hue in that fixed order; torchvision draws a random
  order per image. (A per-image random order would need every op evaluated in every position.)
* RandomResizedCrop samples like torchvision (10 tries, then the centre-crop fallback) and resamples the box
  bilinearly with edge clamping, which is what torchvision's crop + (antialiased) resize gives when, as here,
  the output is never smaller than the crop. Translate and flip are folded into the same `grid_sample`
  (without the crop they are one exact gather; flip alone is a flip and a per-image select).
* RandomRotation uses nearest interpolation and fill 0, about the image centre, like torchvision's default.

Translate pads by reflection by default (the speed-record recipe: `F.pad(x, ..., mode="reflect")` then a
random crop); pass `translate_pad="zeros"` for torchvision's `RandomCrop(size, padding=t)` (zero padding).

On kornia: each op below was timed against kornia.augmentation 0.9's (float input, batch 256 of 3x32x32,
1 CPU thread, median CPU time of 25 interleaved runs on the 2-core dev VM); kornia took longer for every op:
flip 1.9x, resized_crop 3.7x, color_jitter 3.2x, grayscale 2.3x, rotation 1.8x, normalize 1.5x, erasing 2.3x,
translate (RandomCrop, reflect padding) 3.6x. Its RandomResizedCrop and ColorJitter also call `.tolist()` on
their parameters (a host sync on CUDA). So kornia is not used at run time; `bench/augment.py --kornia` re-measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.image_ops import (adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, channel_const,
                              crop_axis, per_image, resized_crop, rgb_to_gray, rotate, sample_boxes, sample_grid, select,
                              source_index, to_float)
from engine.spec import AugmentSpec, ColorJitterSpec, ErasingSpec, ResizedCropSpec

__all__ = [
    "Augmenter",
    "AugmentParams",
    "normalization",
    "GUIDE_PIPELINE",
    "guide_spec",
    "torchvision_guide_transform",
    "to_float",
    "rgb_to_gray",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "rotate",
    "resized_crop",
    "sample_boxes",
]

# ----------------------------------------------------------------------------- the guide's pipeline

GUIDE_PIPELINE = """\
# The tuning guide's CIFAR training transform (its section 1; torchvision, one PIL image at a time);
# guide_spec() is the AugmentSpec that mirrors it, torchvision_guide_transform() builds it.
from torchvision import transforms as T

train_transform = T.Compose([
    T.RandomResizedCrop(32, scale=(0.8, 1.0)),              # ratio (3/4, 4/3), bilinear
    T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
    T.RandomGrayscale(p=0.2),
    T.RandomHorizontalFlip(),                               # p = 0.5
    T.RandomRotation(15),                                   # nearest, fill 0
    T.ToTensor(),
    T.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # augment.mean, augment.std
    T.RandomErasing(p=0.5, scale=(0.02, 0.1), ratio=(0.3, 3.3)),      # value 0
])
"""
# The Augmenter flips right after the crop (one resample); a flip commutes with the per-pixel colour
# ops, so the distribution of images is the guide's.

GUIDE_MEAN = (0.4914, 0.4822, 0.4465)
GUIDE_STD = (0.2023, 0.1994, 0.2010)  # the guide's (per-pixel) figure; CIFAR-10's per-channel std is larger


def guide_spec() -> AugmentSpec:
    """The AugmentSpec of `GUIDE_PIPELINE` (what the guide presets set), the guide's Normalize figures included."""
    return AugmentSpec(
        flip=0.5,
        translate=0,
        cutout=0,
        resized_crop=ResizedCropSpec(enabled=True, scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3)),
        color_jitter=ColorJitterSpec(p=0.8, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
        grayscale=0.2,
        rotation=15.0,
        erasing=ErasingSpec(p=0.5, scale=(0.02, 0.1), ratio=(0.3, 3.3)),
        normalize=True,
        mean=list(GUIDE_MEAN),
        std=list(GUIDE_STD),
    )


def torchvision_guide_transform(mean: Sequence[float], std: Sequence[float], size: int = 32):
    """The torchvision per-image Compose of `GUIDE_PIPELINE` (PIL image in, normalized tensor out)."""
    from torchvision import transforms as T  # only the benchmark and the tests need torchvision

    return T.Compose(
        [
            T.RandomResizedCrop(size, scale=(0.8, 1.0)),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            T.RandomHorizontalFlip(),
            T.RandomRotation(15),
            T.ToTensor(),
            T.Normalize(tuple(mean), tuple(std)),
            T.RandomErasing(p=0.5, scale=(0.02, 0.1), ratio=(0.3, 3.3)),
        ]
    )


def normalization(spec: AugmentSpec, mean: Sequence[float], std: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) a run normalizes with: the spec's own figures where it gives them (the guide's
    fixed ones), else the dataset's `mean` and `std`."""
    if spec.mean and spec.std:
        return tuple(spec.mean), tuple(spec.std)
    return tuple(mean), tuple(std)


# --------------------------------------------------------------------------------------- the augmenter


@dataclass
class AugmentParams:
    """Every random choice for one batch; None where the op is off. All tensors live on the batch's device."""

    crop: Tensor | None = None  # [N, 4] float (top, left, height, width): RandomResizedCrop box
    shift: Tensor | None = None  # [N, 2] long (dy, dx) in [-translate, translate]
    flip: Tensor | None = None  # [N] bool
    jitter: Tensor | None = None  # [N] bool: RandomApply drew ColorJitter
    brightness: Tensor | None = None  # [N] factor
    contrast: Tensor | None = None  # [N] factor
    saturation: Tensor | None = None  # [N] factor
    hue: Tensor | None = None  # [N] shift in turns
    gray: Tensor | None = None  # [N] bool
    angle: Tensor | None = None  # [N] degrees, counter-clockwise
    erase: Tensor | None = None  # [N, 4] float (top, left, height, width); height = width = 0: not erased
    cutout: Tensor | None = None  # [N, 2] long (centre row, centre column)


class Augmenter:
    """Batched training augmentation for one `AugmentSpec` and a dataset's per-channel mean/std ([0, 1] units;
    `spec.mean`/`spec.std`, when given, are used instead)."""

    def __init__(
        self,
        spec: AugmentSpec,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        translate_pad: str = "reflect",
    ):
        mean, std = normalization(spec, mean, std)  # the spec's own figures win (the guide's presets set them)
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels, std {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        if translate_pad not in ("reflect", "zeros"):
            raise ValueError(f"translate_pad must be 'reflect' or 'zeros', got {translate_pad!r}")
        self.spec = spec
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.translate_pad = translate_pad
        cj = spec.color_jitter
        self._jitter_parts = tuple(
            name for name in ("brightness", "contrast", "saturation", "hue") if cj.p > 0 and getattr(cj, name) > 0
        )
        self._consts: dict[torch.device, tuple[Tensor, Tensor]] = {}

    @property
    def ops(self) -> list[str]:
        """The enabled ops, in the order `train` applies them."""
        s = self.spec
        out = []
        if s.resized_crop.enabled:
            out.append("resized_crop")
        if s.translate > 0:
            out.append("translate")
        if s.flip > 0:
            out.append("flip")
        if self._jitter_parts:
            out.append("color_jitter")
        if s.grayscale > 0:
            out.append("grayscale")
        if s.rotation > 0:
            out.append("rotation")
        if s.normalize:
            out.append("normalize")
        if s.erasing.p > 0:
            out.append("erasing")
        if s.cutout > 0:
            out.append("cutout")
        return out

    def __repr__(self) -> str:
        return f"Augmenter({', '.join(self.ops) or 'identity'})"

    # ------------------------------------------------------------------------------------ sampling

    def sample(self, n: int, height: int, width: int, device: torch.device | str) -> AugmentParams:
        """Draw every op's per-image parameters from torch's RNG on `device` (no sync, no host RNG)."""
        s, p = self.spec, AugmentParams()

        def coin(prob: float) -> Tensor:
            return torch.rand(n, device=device) < prob

        def uniform(lo: float, hi: float) -> Tensor:
            return lo + (hi - lo) * torch.rand(n, device=device)

        if s.resized_crop.enabled:
            p.crop = sample_boxes(n, height, width, s.resized_crop.scale, s.resized_crop.ratio, device)
        if s.translate > 0:
            t = s.translate
            p.shift = torch.floor(torch.rand(n, 2, device=device) * (2 * t + 1)).long().clamp_(max=2 * t) - t
        if s.flip > 0:
            p.flip = coin(s.flip)
        if self._jitter_parts:
            cj = s.color_jitter
            p.jitter = coin(cj.p)
            for name in self._jitter_parts:
                v = getattr(cj, name)
                setattr(p, name, uniform(-v, v) if name == "hue" else uniform(max(0.0, 1.0 - v), 1.0 + v))
        if s.grayscale > 0:
            p.gray = coin(s.grayscale)
        if s.rotation > 0:
            p.angle = uniform(-s.rotation, s.rotation)
        if s.erasing.p > 0:
            e = s.erasing
            boxes = sample_boxes(n, height, width, e.scale, e.ratio, device, erasing=True)
            p.erase = boxes * coin(e.p)[:, None]  # not drawn: an empty box at (0, 0)
        if s.cutout > 0:
            u = torch.rand(n, 2, device=device)
            p.cutout = torch.stack([u[:, 0] * height, u[:, 1] * width], dim=1).long()  # uniform over the pixels
        return p

    # ------------------------------------------------------------------------------------- applying

    def train(self, x: Tensor) -> Tensor:
        """Augment a batch [N, C, H, W] (uint8, or float in [0, 1]); float32 out, on x's device.

        x is never modified; with every op off, a float32 x may come back as the same tensor.
        """
        self._check(x)
        n, _, h, w = x.shape
        return self.apply(x, self.sample(n, h, w, x.device))

    __call__ = train

    def eval(self, x: Tensor) -> Tensor:
        """The deterministic part only: to float in [0, 1], then Normalize if the spec normalizes."""
        self._check(x)
        x = to_float(x)
        return self._normalize(x) if self.spec.normalize else x

    def apply(self, x: Tensor, p: AugmentParams) -> Tensor:
        """Apply the ops with the given parameters (deterministic; `train` = `apply(x, sample(...))`)."""
        s = self.spec
        x = self._geometry(to_float(x), p)
        if self._jitter_parts:
            x = select(per_image(p.jitter.to(x.dtype)), self._color_jitter(x, p), x)
        if p.gray is not None and x.shape[1] == 3:
            x = select(per_image(p.gray.to(x.dtype)), rgb_to_gray(x), x)
        if p.angle is not None:
            x = rotate(x, p.angle)
        if s.normalize:
            x = self._normalize(x)
        if p.erase is not None:
            x = x * _outside(p.erase, x.shape[-2], x.shape[-1])
        if p.cutout is not None:
            box = torch.cat([p.cutout - s.cutout // 2, torch.full_like(p.cutout, s.cutout)], dim=1).float()
            x = x * _outside(box, x.shape[-2], x.shape[-1])
        return x

    # --------------------------------------------------------------------------------------- pieces

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected a batch [N, C, H, W], got shape {tuple(x.shape)}")
        if self.spec.normalize and x.shape[1] != len(self.mean):
            raise ValueError(f"batch has {x.shape[1]} channels but mean/std have {len(self.mean)}")

    def _geometry(self, x: Tensor, p: AugmentParams) -> Tensor:
        """RandomResizedCrop, translate and flip as one resample (or one gather, or one flip)."""
        n, c, h, w = x.shape
        if p.crop is None and p.shift is None:
            if p.flip is None:
                return x
            return select(per_image(p.flip.to(x.dtype)), x.flip(-1), x)
        reflect = self.translate_pad == "reflect"
        dy = p.shift[:, 0] if p.shift is not None else None
        dx = p.shift[:, 1] if p.shift is not None else None
        rows, row_ok = source_index(h, n, dy, None, reflect, x.device)
        cols, col_ok = source_index(w, n, dx, p.flip, reflect, x.device)
        if p.crop is not None:  # resample: sample coordinates of the crop, permuted by translate/flip
            gy = crop_axis(p.crop[:, 0], p.crop[:, 2], h).gather(1, rows)
            gx = crop_axis(p.crop[:, 1], p.crop[:, 3], w).gather(1, cols)
            if row_ok is not None:
                gy = torch.where(row_ok, gy, -4.0)  # far outside: grid_sample's zero padding
                gx = torch.where(col_ok, gx, -4.0)
            return sample_grid(x, gy, gx)
        # integer moves only: one exact gather of the flattened pixels
        index = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
        out = x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
        if row_ok is not None:  # zero padding
            out = out * (row_ok[:, :, None] & col_ok[:, None, :]).to(x.dtype)[:, None]
        return out

    def _color_jitter(self, x: Tensor, p: AugmentParams) -> Tensor:
        if p.brightness is not None:
            x = adjust_brightness(x, p.brightness)
        if p.contrast is not None:
            x = adjust_contrast(x, p.contrast)
        if p.saturation is not None:
            x = adjust_saturation(x, p.saturation)
        if p.hue is not None:
            x = adjust_hue(x, p.hue)
        return x

    def _normalize(self, x: Tensor) -> Tensor:
        """(x - mean) / std as one fused x * (1 / std) + (-mean / std)."""
        consts = self._consts.get(x.device)
        if consts is None:  # built once per device
            scale = channel_const([1.0 / s for s in self.std], x.device).view(1, -1, 1, 1)
            shift = channel_const([-m / s for m, s in zip(self.mean, self.std)], x.device).view(1, -1, 1, 1)
            consts = self._consts[x.device] = (scale, shift)
        scale, shift = consts
        return torch.addcmul(shift, x, scale)


def _outside(boxes: Tensor, height: int, width: int) -> Tensor:
    """[N, 1, H, W] float: 0 inside each (top, left, height, width) box, 1 elsewhere (boxes may hang over the border)."""
    rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    top, left = boxes[:, 0:1], boxes[:, 1:2]
    in_rows = ((rows >= top) & (rows < top + boxes[:, 2:3])).to(boxes.dtype)  # [N, H], small
    in_cols = ((cols >= left) & (cols < left + boxes[:, 3:4])).to(boxes.dtype)  # [N, W], small
    return (1.0 - in_rows[:, :, None] * in_cols[:, None, :])[:, None]
