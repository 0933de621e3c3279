"""Image files as the 8-bit RGB pixels a model trained on: by the file's real value range, never clipped.

PIL's `convert("RGB")` clips deeper images instead of scaling them: a 16-bit PNG (mode I;16, values
0..65535) or a 32-bit integer TIFF (mode I) comes out almost all 255, a white image. Here every mode
maps its declared range onto 0..255:

    8-bit modes (L, RGB, P, RGBA, CMYK, ...)   PIL's own conversion (16-bit RGB PNGs open as 8-bit RGB)
    I;16 (16-bit gray PNG, TIFF, PGM)          v / 257, rounded (a 16-bit copy of an 8-bit image, v * 257, is exact)
    I from a TIFF, unsigned (SampleFormat 1)   v * 255 / (2^32 - 1)
    I otherwise (signed 32-bit)                v * 255 / (2^31 - 1); a negative value is refused
    F (32-bit float TIFF)                      taken as [0, 1] (the convention for float images, and the
                                               exported model's input); a value outside it, or NaN, is
                                               refused rather than clamped (a 0..255 float image clamped
                                               would be white again)

A file over MAX_PIXELS pixels is refused before its pixels are decoded: a decompression bomb (a few bytes
of PNG whose header says 30000 x 30000) would otherwise take gigabytes of memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UsageError

__all__ = ["MAX_PIXELS", "ImageFileError", "open_rgb", "rgb_image"]

# PIL's own warning threshold (1024 * 1024 * 1024 // 4 // 3 = 89,478,485 pixels: about a 9,500 x 9,500
# image, or 256 MiB of RGB), made a hard limit: every real photo fits (a 50 MP camera is 50 million),
# and a model takes 32 x 32, so nothing larger is worth gigabytes of decoding.
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

_EIGHT_BIT = frozenset({"1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "LA", "La", "PA"})


class ImageFileError(UsageError):
    """An image file that cannot be read as the picture it shows (one line, naming the file)."""


def _scaled(values: np.ndarray, top: float) -> np.ndarray:
    """values in [0, top] -> uint8, rounded to nearest."""
    return np.clip(np.rint(values.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)


def _gray8(im, where: str) -> np.ndarray:
    """A single-band image deeper than 8 bits as uint8 gray, by its declared value range.

    `where` prefixes an error ("path: "), or is empty where the caller names the file itself."""
    mode = im.mode
    arr = np.asarray(im)
    if mode.startswith("I;16"):
        if arr.dtype.kind == "i" and arr.min(initial=0) < 0:
            raise ImageFileError(f"{where}signed 16-bit pixels below 0 have no brightness to map; save it unsigned")
        top = 32767.0 if arr.dtype.kind == "i" else 65535.0
        return _scaled(arr, top)
    if mode == "I":
        tags = getattr(im, "tag_v2", None)
        sample_format = tags.get(339) if tags is not None else None
        if isinstance(sample_format, tuple):
            sample_format = sample_format[0] if sample_format else None
        if sample_format in (None, 1) and tags is not None:
            # PIL reads an unsigned 32-bit TIFF into int32 with the bits unchanged: reinterpret them
            return _scaled(arr.astype(np.int32, copy=False).view(np.uint32), 4294967295.0)
        if arr.min(initial=0) < 0:
            raise ImageFileError(f"{where}signed 32-bit pixels below 0 have no brightness to map; "
                                 f"save it as 8- or 16-bit")
        return _scaled(arr, 2147483647.0)
    if mode == "F":
        arr = arr.astype(np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ImageFileError(f"{where}float pixels span [{lo:g}, {hi:g}], outside the [0, 1] a float image "
                                 f"means; scale it to [0, 1] or save it as 8- or 16-bit")
        return _scaled(arr, 1.0)
    raise ImageFileError(f"{where}pixel mode {mode} is not one this tool can read; save it as 8-bit RGB")


def rgb_image(im, where: str = ""):
    """The PIL image as an 8-bit RGB PIL image, mapped by its value range (see the module docstring)."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in _EIGHT_BIT:
        return im.convert("RGB")
    return Image.fromarray(_gray8(im, where), "L").convert("RGB")


def open_rgb(path: Path, size: tuple[int, int] | None = None):
    """The file at `path` as an 8-bit RGB PIL image (resized bilinearly to (height, width) when given).

    Every failure is an ImageFileError naming the file: missing, not an image, truncated, over MAX_PIXELS.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with a clearer line
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise _too_large(path, w, h)
            rgb = rgb_image(im, f"{path}: ")
            if size is not None and rgb.size != (size[1], size[0]):
                rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            rgb.load()
            return rgb
    except Image.DecompressionBombError:  # PIL refuses at open, before our check, at twice its limit
        raise ImageFileError(f"{path}: larger than {MAX_PIXELS:,} pixels (a decompression bomb?); "
                             f"resize it first") from None
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageFileError(f"{path}: a directory, not an image file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageFileError(f"{path}: not an image this tool can read ({_first_line(exc)})") from None


def _too_large(path: Path, w: int, h: int) -> ImageFileError:
    return ImageFileError(f"{path}: {w:,} x {h:,} = {w * h:,} pixels, over the {MAX_PIXELS:,} this tool decodes "
                          f"(a decompression bomb?); resize it first")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
