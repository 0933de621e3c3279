"""Thumbnails stored by the worker (engine.thumbs: base64 RGB bytes, row-major, square), decoded
without numpy for terminal views."""

from __future__ import annotations

import base64
import binascii
import math

Pixel = tuple[int, int, int]


def decode(thumb: str) -> list[list[Pixel]]:
    """Rows of RGB pixels; [] for an empty or damaged thumbnail."""
    try:
        raw = base64.b64decode(thumb, validate=True)
    except (binascii.Error, ValueError):
        return []
    side = math.isqrt(len(raw) // 3)
    if not raw or side * side * 3 != len(raw):
        return []
    return [[(raw[i], raw[i + 1], raw[i + 2]) for i in range(r * side * 3, (r + 1) * side * 3, 3)]
            for r in range(side)]
