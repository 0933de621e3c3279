"""Checks that the whitening stem leaves a usable input (they depend on the image size and the model)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import RunSpec

MIN_SIDE = 8  # every model takes any input side >= 8


def stem_problems(spec: RunSpec) -> list[tuple[str, str]]:
    """A k x k whitening stem (no padding) takes k - 1 pixels off each side of the image, and its
    stride divides the rest: what is left must still be a usable input."""
    k, stride, d = spec.model.whiten, spec.model.whiten_stride, spec.data
    if not k or d.source != "synthetic":  # CIFAR is 32x32; a folder's size is known only once it is read
        return []
    left = (d.image_size - k) // stride + 1
    if left >= MIN_SIDE:
        return []
    if stride > 1:
        unstrided = "set model.whiten_stride to 1, or " if d.image_size - k + 1 >= MIN_SIDE else "set "
        return [("model.whiten_stride", f"a {k}x{k} whitening stem with stride {stride} leaves {left}x{left} of the "
                                        f"{d.image_size}x{d.image_size} images (data.image_size), under the {MIN_SIDE} "
                                        f"pixels a model needs: {unstrided}data.image_size to "
                                        f"{(MIN_SIDE - 1) * stride + k} or more")]
    return [("model.whiten", f"a {k}x{k} whitening stem leaves {left}x{left} of the {d.image_size}x{d.image_size} "
                             f"images (data.image_size), under the {MIN_SIDE} pixels a model needs: set model.whiten "
                             f"to {max(d.image_size - MIN_SIDE + 1, 0)} or less, or data.image_size to {MIN_SIDE + k - 1} or more")]
