"""engine.augment: statistical and exact checks of the batched augmentation against its definitions.

Every random test seeds torch, so each runs the same draws every time; the rate tolerances are still
~5 standard deviations wide so that a changed draw order cannot make them fail by chance.
"""

from __future__ import annotations

import math
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from engine.augment import (
    GUIDE_PIPELINE,
    AugmentParams,
    Augmenter,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    guide_spec,
    resized_crop,
    rgb_to_gray,
    rotate,
    sample_boxes,
    torchvision_guide_transform,
)
from engine.spec import AugmentSpec, ColorJitterSpec, ErasingSpec, ResizedCropSpec

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
N = 4000


def only(**kw) -> AugmentSpec:
    """A spec with every op off (normalize too) except the given ones."""
    base = dict(flip=0.0, normalize=False)
    base.update(kw)
    return AugmentSpec(**base)


def images(n: int = N, size: int = 8, seed: int = 0, low: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def within_rate(observed: torch.Tensor, p: float, n: int) -> bool:
    """|rate - p| within 5 standard deviations (and 0.005 for p in {0, 1})."""
    rate = observed.float().mean().item()
    return abs(rate - p) <= 5 * math.sqrt(p * (1 - p) / n) + 0.005


def boxes_of(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For masks [N, H, W]: (is a filled axis-aligned rectangle, top, left, h, w) per image; empty masks give h = w = 0."""
    rows, cols = mask.any(dim=2), mask.any(dim=1)
    h, w = rows.sum(1), cols.sum(1)
    top = torch.where(h > 0, rows.float().argmax(1), 0)
    left = torch.where(w > 0, cols.float().argmax(1), 0)
    # a rectangle: the mask is exactly the outer product of its row and column projections, and both are contiguous
    rect = (mask == (rows[:, :, None] & cols[:, None, :])).flatten(1).all(1)
    contiguous = (rows.diff(dim=1).ne(0).sum(1) <= 2) & (cols.diff(dim=1).ne(0).sum(1) <= 2)
    return rect & contiguous, top, left, h, w


# ------------------------------------------------------------------------------------- basic contract


def test_output_dtype_shape_device_and_float_input():
    x = images(16, 8)
    aug = Augmenter(guide_spec(), MEAN, STD)
    for fn in (aug.train, aug.eval):
        y = fn(x)
        assert y.dtype == torch.float32 and y.shape == x.shape and y.device == x.device
    # float input in [0, 1] is the same image as uint8 / 255
    torch.manual_seed(3)
    a = aug.train(x)
    torch.manual_seed(3)
    b = aug.train(x.float() / 255)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(aug.eval(x), aug.eval(x.float() / 255), atol=1e-6, rtol=0)
    with pytest.raises(ValueError):
        aug.train(x[0])
    with pytest.raises(TypeError):
        aug.train(x.to(torch.int32))


def test_ops_listing_and_guide_spec():
    aug = Augmenter(guide_spec(), MEAN, STD)
    assert aug.ops == ["resized_crop", "flip", "color_jitter", "grayscale", "rotation", "normalize", "erasing"]
    s = guide_spec()
    assert s.resized_crop.enabled and s.resized_crop.scale == (0.8, 1.0)
    assert s.color_jitter.p == 0.8 and (s.color_jitter.brightness, s.color_jitter.hue) == (0.4, 0.1)
    assert (s.grayscale, s.rotation, s.erasing.p, s.erasing.scale) == (0.2, 15.0, 0.5, (0.02, 0.1))
    for piece in ("RandomResizedCrop(32, scale=(0.8, 1.0))", "ColorJitter(0.4, 0.4, 0.4, 0.1)", "RandomErasing"):
        assert piece in GUIDE_PIPELINE
    assert Augmenter(only(), MEAN, STD).ops == []


def test_torchvision_guide_transform_runs():
    from PIL import Image
    from torchvision import transforms as T

    tf = torchvision_guide_transform(MEAN, STD)
    kinds = [type(t).__name__ for t in tf.transforms]
    assert kinds == [
        "RandomResizedCrop", "RandomApply", "RandomGrayscale", "RandomHorizontalFlip",
        "RandomRotation", "ToTensor", "Normalize", "RandomErasing",
    ]  # fmt: skip
    assert isinstance(tf, T.Compose)
    out = tf(Image.fromarray(images(1, 32)[0].permute(1, 2, 0).numpy()))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_eval_is_deterministic_and_normalizes():
    x = images(64, 8)
    aug = Augmenter(guide_spec().model_copy(update={"mean": [], "std": []}), MEAN, STD)  # the dataset's figures
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    expected = (x.float() / 255 - mean) / std
    torch.testing.assert_close(aug.eval(x), expected, atol=1e-5, rtol=0)
    assert torch.equal(aug.eval(x), aug.eval(x))
    torch.testing.assert_close(aug.eval(x), TF.normalize(x.float() / 255, list(MEAN), list(STD)), atol=1e-5, rtol=0)
    plain = Augmenter(guide_spec().model_copy(update={"normalize": False}), MEAN, STD)
    torch.testing.assert_close(plain.eval(x), x.float() / 255, atol=0, rtol=0)


def test_everything_off_is_identity_and_draws_nothing():
    x = images(256, 8)
    off = AugmentSpec(
        flip=0.0,
        translate=0,
        cutout=0,
        resized_crop=ResizedCropSpec(enabled=False, scale=(0.1, 0.2)),
        color_jitter=ColorJitterSpec(p=0.0, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.3),
        grayscale=0.0,
        rotation=0.0,
        erasing=ErasingSpec(p=0.0),
        normalize=True,
    )
    aug = Augmenter(off, MEAN, STD)
    assert aug.ops == ["normalize"]
    state = torch.get_rng_state()
    torch.testing.assert_close(aug.train(x), aug.eval(x), atol=0, rtol=0)
    assert torch.equal(torch.get_rng_state(), state), "a disabled op drew random numbers"
    raw = Augmenter(off.model_copy(update={"normalize": False}), MEAN, STD)
    assert torch.equal(raw.train(x), x.float() / 255)
    # jitter with p > 0 but every factor 0 is off too
    zero_jitter = only(color_jitter=ColorJitterSpec(p=1.0, brightness=0, contrast=0, saturation=0, hue=0))
    assert Augmenter(zero_jitter, MEAN, STD).ops == []


def test_seeded_call_is_reproducible_and_seeds_differ():
    x = images(64, 16)
    aug = Augmenter(
        guide_spec().model_copy(update={"translate": 2, "cutout": 4}), MEAN, STD, translate_pad="zeros"
    )
    torch.manual_seed(7)
    a = aug.train(x)
    torch.manual_seed(7)
    b = aug.train(x)
    torch.manual_seed(8)
    c = aug.train(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "spec",
    [
        only(flip=0.5),
        only(translate=2),
        only(resized_crop=ResizedCropSpec(enabled=True)),
        only(color_jitter=ColorJitterSpec(p=1.0)),
        only(rotation=30.0),
        only(erasing=ErasingSpec(p=1.0)),
        only(cutout=4),
    ],
    ids=["flip", "translate", "resized_crop", "color_jitter", "rotation", "erasing", "cutout"],
)
def test_each_image_gets_its_own_draw(spec):
    torch.manual_seed(0)
    one = images(1, 16, low=1)
    x = one.expand(64, -1, -1, -1).contiguous()  # 64 copies of one image
    y = Augmenter(spec, MEAN, STD).train(x)
    distinct = torch.unique(y.flatten(1), dim=0).shape[0]
    least = 2 if spec.flip else 10 if spec.translate else 20  # flip has 2 outcomes, translate 25
    assert distinct >= least, f"only {distinct} distinct outputs from 64 draws"


# ------------------------------------------------------------------------------------------- flip


def test_flip_rate_and_exactness():
    x = images()
    torch.manual_seed(1)
    y = Augmenter(only(flip=0.3), MEAN, STD).train(x)
    xf = x.float() / 255
    same = (y == xf).flatten(1).all(1)
    flipped = (y == xf.flip(-1)).flatten(1).all(1)
    assert (same ^ flipped).all(), "every image is either untouched or exactly x.flip(-1)"
    assert within_rate(flipped, 0.3, N)


# -------------------------------------------------------------------------------------- grayscale


def test_grayscale_rate_and_formula():
    x = images()
    torch.manual_seed(2)
    y = Augmenter(only(grayscale=0.25), MEAN, STD).train(x)
    xf = x.float() / 255
    gray = (y[:, 0] == y[:, 1]).flatten(1).all(1) & (y[:, 1] == y[:, 2]).flatten(1).all(1)
    assert within_rate(gray, 0.25, N)
    assert torch.equal(y[~gray], xf[~gray])
    ref = TF.rgb_to_grayscale(xf[gray], num_output_channels=3)
    torch.testing.assert_close(y[gray], ref, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------ color jitter


def test_color_helpers_match_torchvision():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 3, 9, 7, generator=g)
    x[0] = 0.5  # gray image: hue undefined
    x[1, :, :2] = torch.tensor([1.0, 1.0, 0.0]).view(3, 1, 1)  # ties between max channels
    factor = torch.rand(24, generator=g) * 2
    shift = torch.rand(24, generator=g) - 0.5
    cases = [
        (adjust_brightness, TF.adjust_brightness, factor),
        (adjust_contrast, TF.adjust_contrast, factor),
        (adjust_saturation, TF.adjust_saturation, factor),
        (adjust_hue, TF.adjust_hue, shift),
    ]
    for ours, theirs, f in cases:
        ref = torch.stack([theirs(x[i], float(f[i])) for i in range(len(x))])
        torch.testing.assert_close(ours(x, f), ref, atol=5e-6, rtol=0, msg=ours.__name__)
    torch.testing.assert_close(rgb_to_gray(x), TF.rgb_to_grayscale(x), atol=1e-6, rtol=0)


def test_color_jitter_rate_ranges_and_definition():
    cj = ColorJitterSpec(p=0.6, brightness=0.3, contrast=0.2, saturation=0.4, hue=0.1)
    aug = Augmenter(only(color_jitter=cj), MEAN, STD)
    torch.manual_seed(3)
    p = aug.sample(N, 8, 8, "cpu")
    assert within_rate(p.jitter, 0.6, N)
    for name, lo, hi in [("brightness", 0.7, 1.3), ("contrast", 0.8, 1.2), ("saturation", 0.6, 1.4), ("hue", -0.1, 0.1)]:
        v = getattr(p, name)
        assert v.min() >= lo and v.max() <= hi, name
        assert v.min() < lo + 0.01 * (hi - lo) and v.max() > hi - 0.01 * (hi - lo), f"{name} does not fill its range"
    x = images(N, 8)
    xf = x.float() / 255
    y = aug.apply(x, p)
    assert torch.equal(y[~p.jitter], xf[~p.jitter]), "images without jitter are untouched"
    # the jittered ones: brightness, contrast, saturation, hue in that order, with the drawn factors
    idx = p.jitter.nonzero().flatten()[:16]
    for i in idx.tolist():
        ref = TF.adjust_brightness(xf[i], float(p.brightness[i]))
        ref = TF.adjust_contrast(ref, float(p.contrast[i]))
        ref = TF.adjust_saturation(ref, float(p.saturation[i]))
        ref = TF.adjust_hue(ref, float(p.hue[i]))
        torch.testing.assert_close(y[i], ref, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------- erasing


def test_erasing_rate_and_box_geometry():
    size, scale, ratio = 16, (0.02, 0.33), (0.3, 3.3)
    x = images(N, size, low=1)  # no zero pixels: a zero is an erased pixel
    torch.manual_seed(4)
    y = Augmenter(only(erasing=ErasingSpec(p=0.5, scale=scale, ratio=ratio)), MEAN, STD).train(x)
    mask = (y == 0).all(1)
    assert torch.equal(y.masked_fill(mask[:, None], 0), torch.where(mask[:, None], 0.0, x.float() / 255))
    rect, top, left, h, w = boxes_of(mask)
    assert rect.all(), "each erased region is one rectangle"
    erased = h > 0
    assert within_rate(erased, 0.5, N)  # with 10 tries, a box that fits is found almost surely
    h, w = h[erased].float(), w[erased].float()
    area = size * size
    slack = 0.5 * (h + w) + 0.25  # |round(a) * round(b) - a * b| for a = sqrt(A r), b = sqrt(A / r)
    assert (h * w >= scale[0] * area - slack).all() and (h * w <= scale[1] * area + slack).all()
    assert ((h + 0.5) / (w - 0.5).clamp_min(1e-9) >= ratio[0]).all() and ((h - 0.5) / (w + 0.5) <= ratio[1]).all()
    assert (h < size).all() and (w < size).all()
    frac = (h * w / area).mean().item()
    # torchvision's sampler on the same image size: mean erased fraction agrees
    from torchvision.transforms import RandomErasing

    torch.manual_seed(5)
    img = torch.zeros(3, size, size)
    ref = [RandomErasing.get_params(img, scale=scale, ratio=ratio, value=[0]) for _ in range(1500)]
    ref_frac = sum(bh * bw for _, _, bh, bw, _ in ref) / (1500 * area)
    assert abs(frac - ref_frac) < 0.015, (frac, ref_frac)


def test_erasing_is_zero_after_normalize():
    x = images(512, 16, low=1)
    torch.manual_seed(6)
    y = Augmenter(AugmentSpec(flip=0.0, erasing=ErasingSpec(p=1.0)), MEAN, STD).train(x)
    z = Augmenter(AugmentSpec(flip=0.0), MEAN, STD).eval(x)
    changed = (y != z).any(1)
    assert (y.permute(0, 2, 3, 1)[changed] == 0).all()
    assert changed.flatten(1).any(1).float().mean() > 0.95


# --------------------------------------------------------------------------------- resized crop


def coordinate_images(n: int, size: int) -> torch.Tensor:
    """Channel 0 = column index, channel 1 = row index (as uint8): an image that names its own pixels."""
    ramp = torch.arange(size, dtype=torch.uint8)
    x = torch.zeros(n, 3, size, size, dtype=torch.uint8)
    x[:, 0] = ramp.view(1, size)
    x[:, 1] = ramp.view(size, 1)
    return x


def test_resized_crop_box_statistics_from_pixels():
    size, scale, ratio = 16, (0.25, 0.75), (0.5, 2.0)
    x = coordinate_images(N, size)
    torch.manual_seed(7)
    y = Augmenter(only(resized_crop=ResizedCropSpec(enabled=True, scale=scale, ratio=ratio)), MEAN, STD).train(x)
    y = (y * 255).round()
    # bilinear with clamping to the box: the first/last output column is exactly the box's first/last column
    left, right = y[:, 0, 0, 0], y[:, 0, 0, -1]
    top, bottom = y[:, 1, 0, 0], y[:, 1, -1, 0]
    w, h = right - left + 1, bottom - top + 1
    assert (left >= 0).all() and (right <= size - 1).all() and (top >= 0).all() and (bottom <= size - 1).all()
    area = size * size
    slack = 0.5 * (h + w) + 0.25
    assert (h * w >= scale[0] * area - slack).all() and (h * w <= scale[1] * area + slack).all()
    assert ((w + 0.5) / (h - 0.5) >= ratio[0]).all() and ((w - 0.5) / (h + 0.5) <= ratio[1]).all()
    # torchvision's sampler: same mean area fraction, and positions spread over the image
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(8)
    ref = [RandomResizedCrop.get_params(torch.zeros(1, size, size), list(scale), list(ratio)) for _ in range(2000)]
    ref_frac = sum(bh * bw for _, _, bh, bw in ref) / (2000 * area)
    assert abs((h * w).mean().item() / area - ref_frac) < 0.015
    assert len(torch.unique(torch.stack([top, left], 1), dim=0)) > 30


def test_resized_crop_matches_torchvision_for_given_boxes():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 12, 10, generator=g)
    boxes = torch.tensor([[0, 0, 12, 10], [2, 3, 7, 5], [0, 5, 12, 5], [5, 0, 3, 9], [1, 1, 11, 4]], dtype=torch.float32)
    ours = resized_crop(x, boxes)
    for i, (t, l, h, w) in enumerate(boxes.long().tolist()):
        ref = TF.resized_crop(x[i], t, l, h, w, [12, 10], interpolation=InterpolationMode.BILINEAR, antialias=True)
        torch.testing.assert_close(ours[i], ref, atol=2e-5, rtol=0)
    torch.testing.assert_close(ours[0], x[0], atol=2e-6, rtol=0)


def test_resized_crop_fallback_is_centred():
    # aspect 5..6 never fits a square: torchvision falls back to a centred crop of ratio min(ratio)
    torch.manual_seed(9)
    b = sample_boxes(64, 20, 20, (0.9, 1.0), (5.0, 6.0), "cpu")
    assert torch.equal(b, torch.tensor([[8.0, 0.0, 4.0, 20.0]]).expand(64, 4))


# ------------------------------------------------------------------------------------- translate


def distinct_images(n: int, size: int) -> torch.Tensor:
    """Float images in (0, 1] whose pixels are all different (so a shift can be identified exactly)."""
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, size, size, generator=g) * 0.99 + 0.01).clamp(0.01, 1.0)


@pytest.mark.parametrize("pad", ["zeros", "reflect"])
def test_translate_shifts_by_at_most_t(pad):
    n, size, t = 2000, 10, 2
    x = distinct_images(n, size)
    torch.manual_seed(10)
    y = Augmenter(only(translate=t), MEAN, STD, translate_pad=pad).train(x)
    padded = F.pad(x, (t, t, t, t), mode="constant" if pad == "zeros" else "reflect")
    found = torch.full((n,), -1)
    for k, (dy, dx) in enumerate((dy, dx) for dy in range(-t, t + 1) for dx in range(-t, t + 1)):
        cand = padded[:, :, t + dy : t + dy + size, t + dx : t + dx + size]
        hit = (cand == y).flatten(1).all(1)
        assert not (hit & (found >= 0)).any()
        found = torch.where(hit, k, found)
    assert (found >= 0).all(), "every output is x shifted by (dy, dx) with |dy|, |dx| <= t"
    counts = torch.bincount(found, minlength=(2 * t + 1) ** 2).float()
    expected = n / (2 * t + 1) ** 2
    assert (counts > 0.5 * expected).all() and (counts < 1.5 * expected).all(), counts


def test_translate_and_flip_compose_in_order():
    n, size, t = 600, 9, 3
    x = distinct_images(n, size)
    aug = Augmenter(only(translate=t, flip=0.5), MEAN, STD, translate_pad="zeros")
    torch.manual_seed(11)
    p = aug.sample(n, size, size, "cpu")
    y = aug.apply(x, p)
    padded = F.pad(x, (t, t, t, t))
    for i in range(0, n, 7):
        dy, dx = p.shift[i].tolist()
        ref = padded[i, :, t + dy : t + dy + size, t + dx : t + dx + size]
        ref = ref.flip(-1) if p.flip[i] else ref
        assert torch.equal(y[i], ref)


# ---------------------------------------------------------------------------------------- cutout


def test_cutout_zeroes_one_square_clipped_at_borders():
    n, size, side = N, 16, 6
    x = torch.ones(n, 3, size, size)
    torch.manual_seed(12)
    y = Augmenter(only(cutout=side), MEAN, STD).train(x)
    mask = (y == 0).all(1)
    assert ((y == 0) | (y == 1)).all() and (mask[:, None] == (y == 0)).all()
    rect, top, left, h, w = boxes_of(mask)
    assert rect.all()
    inside = (top > 0) & (left > 0) & (top + h < size) & (left + w < size)
    assert (h[inside] == side).all() and (w[inside] == side).all()
    assert ((h > 0) & (h <= side) & (w > 0) & (w <= side)).all()
    clipped = ~inside & ((h < side) | (w < side))
    touches = (top == 0) | (left == 0) | (top + h == size) | (left + w == size)
    assert touches[clipped].all(), "a square smaller than `side` is one cut by the border"
    # centre uniform over the pixels: square rows [cy - side // 2, cy - side // 2 + side)
    cy = torch.where(top > 0, top + side // 2, top + h - (side - side // 2))
    assert torch.bincount(cy, minlength=size).min() > 0.5 * n / size
    assert abs(cy.float().mean().item() - (size - 1) / 2) < 0.3


def test_cutout_after_normalize_is_zero():
    x = images(256, 16, low=1)
    torch.manual_seed(13)
    y = Augmenter(AugmentSpec(flip=0.0, cutout=5), MEAN, STD).train(x)
    assert ((y == 0).all(1).flatten(1).sum(1) >= 9).all()  # at least a 3x3 corner of the 5x5 square


# -------------------------------------------------------------------------------------- rotation


def test_rotate_matches_torchvision():
    g = torch.Generator().manual_seed(1)
    # non-square on purpose; even sides, so that +-90 degrees maps pixel centres onto pixel centres (with an odd
    # and an even side every sample would be an exact nearest-neighbour tie, decided by float rounding)
    x = torch.rand(8, 3, 12, 16, generator=g)
    angles = torch.tensor([0.0, 7.5, -15.0, 30.0, 90.0, -90.0, 179.0, -45.0])
    ours = rotate(x, angles)
    ref = torch.stack([TF.rotate(x[i], float(angles[i]), interpolation=InterpolationMode.NEAREST) for i in range(8)])
    assert (ours - ref).abs().gt(1e-6).float().mean() < 0.01  # nearest may round a rare exact tie the other way
    torch.testing.assert_close(ours[0], x[0], atol=0, rtol=0)


def test_rotation_angles_are_per_image_within_range():
    aug = Augmenter(only(rotation=15.0), MEAN, STD)
    torch.manual_seed(14)
    p = aug.sample(N, 8, 8, "cpu")
    assert (p.angle.abs() <= 15).all() and p.angle.min() < -14.5 and p.angle.max() > 14.5
    assert abs(p.angle.mean().item()) < 0.5
    x = distinct_images(24, 12)
    y = aug.apply(x, AugmentParams(angle=p.angle[:24]))
    ref = torch.stack([TF.rotate(x[i], float(p.angle[i]), interpolation=InterpolationMode.NEAREST) for i in range(24)])
    assert (y - ref).abs().gt(1e-6).float().mean() < 0.01


# ----------------------------------------------------------------------- whole pipeline vs torchvision


def test_guide_pipeline_matches_torchvision_with_the_same_draws():
    n, size = 32, 16
    x = images(n, size)
    aug = Augmenter(guide_spec(), MEAN, STD)
    torch.manual_seed(15)
    p = aug.sample(n, size, size, "cpu")
    y = aug.apply(x, p)
    refs = []
    for i in range(n):
        img = x[i].float() / 255
        t, l, h, w = p.crop[i].long().tolist()
        img = TF.resized_crop(img, t, l, h, w, [size, size], antialias=True)
        if p.flip[i]:
            img = TF.horizontal_flip(img)
        if p.jitter[i]:
            img = TF.adjust_brightness(img, float(p.brightness[i]))
            img = TF.adjust_contrast(img, float(p.contrast[i]))
            img = TF.adjust_saturation(img, float(p.saturation[i]))
            img = TF.adjust_hue(img, float(p.hue[i]))
        if p.gray[i]:
            img = TF.rgb_to_grayscale(img, num_output_channels=3)
        img = TF.rotate(img, float(p.angle[i]), interpolation=InterpolationMode.NEAREST)
        img = TF.normalize(img, list(aug.mean), list(aug.std))  # the guide's figures
        t, l, h, w = p.erase[i].long().tolist()
        img = TF.erase(img, t, l, h, w, torch.tensor(0.0))
        refs.append(img)
    ref = torch.stack(refs)
    close = (y - ref).abs() <= 1e-4
    assert close.float().mean() > 0.995, close.float().mean()
    # and the sampled choices follow the spec's rates (loosely, n is small)
    for name in ("flip", "jitter", "gray"):
        assert 0 < getattr(p, name).sum() < n


# --------------------------------------------------------------------------------------- no syncs


def _forbid(*_a, **_k):
    raise AssertionError("host sync in Augmenter.train")


@pytest.mark.parametrize("with_crop", [False, True], ids=["gather-path", "grid-path"])
def test_train_never_syncs_with_every_op_on(monkeypatch, with_crop):
    spec = AugmentSpec(
        flip=0.5,
        translate=2,
        cutout=4,
        resized_crop=ResizedCropSpec(enabled=with_crop, scale=(0.5, 1.0)),
        color_jitter=ColorJitterSpec(p=0.8),
        grayscale=0.2,
        rotation=15.0,
        erasing=ErasingSpec(p=0.5),
        normalize=True,
    )
    aug = Augmenter(spec, MEAN, STD, translate_pad="zeros")
    x = images(32, 16)  # the first call: building the per-device constants must not sync either
    real_getitem = torch.Tensor.__getitem__

    def getitem(self, idx):
        parts = idx if isinstance(idx, tuple) else (idx,)
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in parts):
            raise AssertionError("boolean-mask indexing (data-dependent shape) in Augmenter.train")
        return real_getitem(self, idx)

    for name in ("item", "tolist", "cpu", "numpy", "nonzero", "__bool__", "__int__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, _forbid)
    monkeypatch.setattr(torch, "nonzero", _forbid)
    monkeypatch.setattr(torch.Tensor, "__getitem__", getitem)
    y = aug.train(x)
    monkeypatch.undo()
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_engine_augment_imports_only_torch_and_the_spec():
    """No UI package (textual, rich, typer) and no optional one (torchvision, kornia) at import time.

    Checked on the source (cheap); tests/test_layering.py checks the engine's real imports in a subprocess.
    """
    import ast

    from .conftest import ROOT

    for name in ("augment.py", "image_ops.py"):
        tree = ast.parse((ROOT / "engine" / name).read_text())
        top_level = set()
        for node in tree.body:  # module level only: function bodies may import lazily
            if isinstance(node, ast.Import):
                top_level |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                top_level.add((node.module or "").split(".")[0])
        assert top_level <= {"__future__", "math", "dataclasses", "typing", "torch", "engine"}, (name, top_level)
