"""The hardest examples' stored thumbnails as inline PNG images for the HTML report (stdlib only:
the report never needs torch, numpy or the data set)."""

from __future__ import annotations

import base64
import struct
import zlib
from html import escape
from typing import Any, Callable

from cockpit.core.thumbs import Pixel, decode

SCALE = 4  # a 16x16 thumbnail is drawn 64x64, pixelated


def png(pixels: list[list[Pixel]]) -> bytes:
    """An 8-bit RGB PNG of rows of pixels."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)  # filter 0 per row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def data_uri(pixels: list[list[Pixel]]) -> str:
    return "data:image/png;base64," + base64.b64encode(png(pixels)).decode("ascii")


def thumb_cards(examples: list[dict[str, Any]], name: Callable[[Any], str]) -> str:
    """A grid of the examples that carry a thumbnail: image, then rank, index, label, prediction
    and loss in words; "" when none does (older runs, or evaluate.hardest = 0)."""
    cards = []
    for n, e in enumerate(examples):
        pixels = decode(e.get("thumb") or "")
        if not pixels:
            continue
        label, pred = name(e.get("label")), name(e.get("pred"))
        loss = e.get("loss")
        loss_text = f"{loss:.3f}" if isinstance(loss, (int, float)) else "–"
        side = len(pixels) * SCALE
        wrong = ' class="neg"' if e.get("pred") != e.get("label") else ""
        cards.append(
            f'<figure class="thumb"><img src="{data_uri(pixels)}" width="{side}" height="{side}" '
            f'alt="test image {escape(str(e.get("index", "")))}: label {escape(label)}, predicted {escape(pred)}">'
            f'<figcaption><b>#{n + 1}</b> test[{escape(str(e.get("index", "")))}]<br>label {escape(label)}<br>'
            f'<span{wrong}>pred {escape(pred)}</span><br>loss {loss_text}</figcaption></figure>')
    return f'<div class="thumbs">{"".join(cards)}</div>' if cards else ""
