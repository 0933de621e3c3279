"""The synthetic source: a learnable, seeded set of any size (each class a smooth colour/frequency
pattern, every image shifted, rescaled and noised on its own), generated vectorized in seconds."""

from __future__ import annotations

import math

import torch

from ..spec import DataSpec
from .common import Progress, mix_seed, report_progress



_SYN_NOISE = 0.3  # half-width of the uniform pixel noise, [0, 1] units
_SYN_BRIGHTNESS = 0.1  # std of the per-image, per-channel brightness shift


def synthetic(spec: DataSpec, seed: int, progress: Progress | None):
    k, s = spec.synthetic_classes, spec.image_size
    g = torch.Generator().manual_seed(mix_seed(seed, 0x5EED))
    # Each class: a base colour, a colour direction for its wave, a 2-D frequency and a phase.
    params = {
        "base": torch.rand(k, 3, generator=g) * 0.5 + 0.25,
        "dir": torch.nn.functional.normalize(torch.randn(k, 3, generator=g), dim=1) * 0.22,
        "freq": (torch.rand(k, generator=g) * 2.5 + 0.75),  # cycles per image
        "angle": torch.rand(k, generator=g) * math.pi,
        "phase": torch.rand(k, generator=g) * 2 * math.pi,
    }
    width = len(str(k - 1))
    classes = [f"class{i:0{width}d}" for i in range(k)]
    train_x, train_y = _synthetic_split(params, spec.synthetic_train, s, mix_seed(seed, 1), progress, "generating synthetic train")
    test_x, test_y = _synthetic_split(params, spec.synthetic_test, s, mix_seed(seed, 2), progress, "generating synthetic test")
    return train_x, train_y, test_x, test_y, classes


def _synthetic_split(params: dict[str, torch.Tensor], n: int, s: int, stream: int, progress: Progress | None, desc: str):
    k = len(params["base"])
    g = torch.Generator().manual_seed(stream)
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    # per-image parameters, drawn up front so the result does not depend on the chunking
    shift = (torch.rand(n, 2, generator=g) - 0.5) * (s / 4)  # up to s/8 pixels each way
    contrast = torch.rand(n, generator=g) * 0.8 + 0.6
    brightness = torch.randn(n, 3, generator=g) * _SYN_BRIGHTNESS
    ng = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))

    coords = torch.arange(s, dtype=torch.float32)
    out = torch.empty(n, 3, s, s, dtype=torch.uint8)
    chunk = max(1, (1 << 21) // (s * s))
    report_progress(progress, desc, 0, n)
    for i in range(0, n, chunk):
        j = min(n, i + chunk)
        b = j - i
        lab = y[i:j]
        f = params["freq"][lab] * (2 * math.pi / s)
        fx = (f * torch.cos(params["angle"][lab]))[:, None]
        fy = (f * torch.sin(params["angle"][lab]))[:, None]
        # sin(ax + by + p) = sin(ax) cos(by + p) + cos(ax) sin(by + p): sines of [b, s] only
        ax = fx * (coords - shift[i:j, 0, None])
        by = fy * (coords - shift[i:j, 1, None]) + params["phase"][lab][:, None]
        wave = torch.sin(by)[:, :, None] * torch.cos(ax)[:, None, :]
        wave.addcmul_(torch.cos(by)[:, :, None], torch.sin(ax)[:, None, :])  # [b, s(y), s(x)]
        # everything in 0..255 units; +0.5 so the final truncation rounds
        amp = (contrast[i:j, None] * params["dir"][lab] * 255)[:, :, None, None]  # [b, 3, 1, 1]
        offset = ((params["base"][lab] + brightness[i:j] - _SYN_NOISE) * 255 + 0.5)[:, :, None, None]
        img = torch.addcmul(offset, wave[:, None], amp)  # [b, 3, s, s]
        # uniform pixel noise from raw random bytes (a generator's normal draw is ~5x slower)
        words = torch.empty((b * 3 * s * s + 7) // 8, dtype=torch.int64).random_(-(2**63), 2**63 - 1, generator=ng)
        noise = words.view(torch.uint8)[: b * 3 * s * s].view(b, 3, s, s)
        img.add_(noise, alpha=_SYN_NOISE * 2)
        out[i:j] = img.clamp_(0, 255)  # float -> uint8 truncates toward zero
        report_progress(progress, desc, j, n)
    return out, y.to(torch.int64)
