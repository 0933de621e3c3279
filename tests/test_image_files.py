"""Image files that lie about their pixels: deeper than 8 bits (scaled by their real range, never clipped to
white), float images outside [0, 1] (refused, not clamped), and decompression bombs (refused before decoding),
in predict and in a folder dataset alike."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.image_file import MAX_PIXELS, ImageFileError, open_rgb

from .conftest import ROOT, cockpit

# a smooth 8-bit picture with every level 0..255 in it, so a wrong scale cannot hide
RAMP = ((np.arange(32)[:, None] * 8 + np.arange(32)[None, :] * 3) % 256).astype(np.uint8)


def _png(path: Path, arr: np.ndarray, bit_depth: int, colour_type: int, size: tuple[int, int] | None = None) -> Path:
    """A PNG written by hand (PIL cannot write 16-bit RGB): big-endian samples, filter 0 on every row."""
    h, w = size or arr.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + arr[y].astype(dtype).tobytes() for y in range(arr.shape[0]))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(open_rgb(path))


def test_a_16_bit_gray_png_decodes_as_its_8_bit_original_not_white(tmp_path):
    from PIL import Image

    Image.fromarray(RAMP, "L").save(tmp_path / "g8.png")
    _png(tmp_path / "g16.png", RAMP.astype(np.uint16) * 257, 16, 0)
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    # what PIL's own convert gives: the bug this module exists for
    assert np.asarray(Image.open(tmp_path / "g16.png").convert("RGB")).mean() > 250
    expected = np.repeat(RAMP[:, :, None], 3, axis=2)
    assert np.array_equal(_pixels(tmp_path / "g16.png"), expected)
    assert np.array_equal(_pixels(tmp_path / "g8.png"), expected)
    # a 16-bit value between two 8-bit levels rounds to the nearer one
    _png(tmp_path / "mid.png", np.full((2, 2), 128 * 257 + 100, np.uint16), 16, 0)
    assert (_pixels(tmp_path / "mid.png") == 128).all()


def test_16_bit_rgb_and_gray_alpha_pngs_keep_their_colours(tmp_path):
    rgb8 = np.stack([RAMP, 255 - RAMP, RAMP // 2], axis=2)
    _png(tmp_path / "rgb16.png", rgb8.astype(np.uint16) * 257, 16, 2)
    assert np.array_equal(_pixels(tmp_path / "rgb16.png"), rgb8)
    la = np.stack([RAMP, np.full_like(RAMP, 255)], axis=2)
    _png(tmp_path / "la16.png", la.astype(np.uint16) * 257, 16, 4)
    assert np.array_equal(_pixels(tmp_path / "la16.png"), np.repeat(RAMP[:, :, None], 3, axis=2))


def test_32_bit_integer_tiffs_are_scaled_by_their_sample_format(tmp_path):
    from PIL import Image

    expected = np.repeat(RAMP[:, :, None], 3, axis=2)
    signed = RAMP.astype(np.int64) * 2147483647 // 255
    Image.fromarray(signed.astype(np.int32), "I").save(tmp_path / "s32.tif")  # PIL writes SampleFormat 2
    assert Image.open(tmp_path / "s32.tif").mode == "I"
    assert np.array_equal(_pixels(tmp_path / "s32.tif"), expected)
    # unsigned 32-bit: PIL reads the bits into int32 unchanged (values over 2^31 look negative)
    unsigned = (RAMP.astype(np.uint64) * 4294967295 // 255).astype(np.uint32)
    Image.fromarray(unsigned.view(np.int32), "I").save(tmp_path / "u32.tif")
    raw = bytearray((tmp_path / "u32.tif").read_bytes())
    _set_sample_format_unsigned(raw)
    (tmp_path / "u32.tif").write_bytes(bytes(raw))
    assert Image.open(tmp_path / "u32.tif").tag_v2.get(339) in (1, (1,))
    assert np.array_equal(_pixels(tmp_path / "u32.tif"), expected)
    Image.fromarray(np.full((4, 4), -5, np.int32), "I").save(tmp_path / "neg.tif")
    with pytest.raises(ImageFileError, match=r"neg\.tif: signed 32-bit pixels below 0"):
        open_rgb(tmp_path / "neg.tif")


def _set_sample_format_unsigned(tiff: bytearray) -> None:
    """Rewrite tag 339 (SampleFormat) from 2 (signed) to 1 (unsigned) in a little-endian TIFF's first IFD."""
    assert tiff[:2] == b"II"
    ifd = struct.unpack_from("<I", tiff, 4)[0]
    for i in range(struct.unpack_from("<H", tiff, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", tiff, entry)[0] == 339:
            struct.pack_into("<H", tiff, entry + 8, 1)
            return
    raise AssertionError("no SampleFormat tag")


def test_float_images_are_taken_as_0_to_1_and_refused_outside_it(tmp_path):
    from PIL import Image

    Image.fromarray(RAMP.astype(np.float32) / 255, "F").save(tmp_path / "f.tif")
    assert np.array_equal(_pixels(tmp_path / "f.tif"), np.repeat(RAMP[:, :, None], 3, axis=2))
    Image.fromarray(RAMP.astype(np.float32), "F").save(tmp_path / "f255.tif")  # 0..255 as floats: clamped = white
    with pytest.raises(ImageFileError, match=r"f255\.tif: float pixels span \[0, 255\], outside the \[0, 1\]"):
        open_rgb(tmp_path / "f255.tif")
    Image.fromarray(np.full((4, 4), np.nan, np.float32), "F").save(tmp_path / "nan.tif")
    with pytest.raises(ImageFileError, match="nan.tif: float pixels span"):
        open_rgb(tmp_path / "nan.tif")


def _bomb(path: Path, side: int = 30000) -> Path:
    """A 1-bit PNG whose header says side x side, with a tiny IDAT: under 100 bytes on disk."""
    return _png(path, np.zeros((1, 1), np.uint8), 1, 0, size=(side, side))


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = _bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100
    with pytest.raises(ImageFileError, match=r"bomb\.png: larger than 89,478,485 pixels"):
        open_rgb(bomb)
    # between PIL's warning and its error (1x..2x its limit): refused by this tool's own check, no warning
    side = int((MAX_PIXELS * 1.5) ** 0.5)
    with _no_warnings():
        with pytest.raises(ImageFileError, match=rf"{side:,} x {side:,} = .* pixels, over the 89,478,485"):
            open_rgb(_bomb(tmp_path / "big.png", side))


class _no_warnings:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_a_16_bit_training_image_in_a_folder_dataset_decodes_as_its_8_bit_original(tmp_path):
    from PIL import Image

    from engine.data.folder import _decode_chunk

    Image.fromarray(RAMP, "L").save(tmp_path / "a.png")
    _png(tmp_path / "b.png", RAMP.astype(np.uint16) * 257, 16, 0)
    out, errors = _decode_chunk([str(tmp_path / "a.png"), str(tmp_path / "b.png")], 32, 32, use_jpeg=False)
    assert not errors
    assert np.array_equal(out[0], out[1]) and out[1].mean() < 200


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from engine.spec import load_spec
    from engine.store import Run

    sets = ["data.synthetic_train=128", "data.synthetic_test=64", "train.batch_size=64", "train.epochs=1",
            "train.threads=1"]
    run = Run.create(tmp_path_factory.mktemp("img") / "runs", load_spec(None, sets))
    proc = subprocess.run([sys.executable, "-m", "engine.worker", str(run.path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@pytest.mark.slow
def test_a_16_bit_copy_predicts_as_its_8_bit_original_and_not_as_white(tiny_run, tmp_path):
    from PIL import Image

    from engine.data import load_dataset
    from engine.export import predict_images

    spec = tiny_run.spec()
    data = load_dataset(spec.data, spec.data.seed)
    img = data.test_x[0].permute(1, 2, 0).numpy()  # an 8-bit test image, HWC
    gray = np.asarray(Image.fromarray(img).convert("L"))
    Image.fromarray(gray, "L").save(tmp_path / "gray8.png")
    _png(tmp_path / "gray16.png", gray.astype(np.uint16) * 257, 16, 0)
    _png(tmp_path / "rgb16.png", img.astype(np.uint16) * 257, 16, 2)
    Image.fromarray(img).save(tmp_path / "rgb8.png")
    Image.new("RGB", (32, 32), (255, 255, 255)).save(tmp_path / "white.png")
    k = data.num_classes
    rows = predict_images(tiny_run, [tmp_path / n for n in
                                     ("gray8.png", "gray16.png", "rgb8.png", "rgb16.png", "white.png")], top_k=k)
    gray8, gray16, rgb8, rgb16, white = (dict(r["top"]) for r in rows)
    assert gray16 == gray8 and rgb16 == rgb8
    assert max(abs(gray16[c] - white[c]) for c in white) > 1e-4  # the old decode gave white's exactly
    assert torch.tensor(list(gray8.values())).sum().item() == pytest.approx(1.0)


@pytest.mark.slow
def test_predict_refuses_a_bomb_and_a_float_image_with_one_line(tiny_run, tmp_path):
    from PIL import Image

    _bomb(tmp_path / "bomb.png")
    res = cockpit("predict", str(tiny_run.path), "bomb.png", cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "bomb.png: larger than 89,478,485 pixels" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    Image.fromarray(np.full((8, 8), 200.0, np.float32), "F").save(tmp_path / "f.tif")
    res = cockpit("predict", str(tiny_run.path), "f.tif", cwd=tmp_path, timeout=300)
    assert res.returncode == 2 and "f.tif: float pixels span [200, 200]" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
