"""data.png: the fast PNG reader equals PIL on every kind it decodes itself, and on the
five row filters written by hand; the rest goes through PIL; bad files name themselves."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from perpixel.data.png import read_png
from perpixel.errors import DataError


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def write_png(path, samples: np.ndarray, colour: int, depth: int, filters: list[int]) -> None:
    """A PNG whose row y is written with filter `filters[y % len]` (PNG spec 9.2, the
    forward direction, written plainly here so that the reader is checked against it)."""
    h, w = samples.shape[:2]
    data = samples.astype(">u2" if depth == 16 else np.uint8).tobytes()
    rb = len(data) // h
    bpp = max(1, rb // w)
    rows, prev = [], bytes(rb)
    for y in range(h):
        line, ft = data[y * rb : (y + 1) * rb], filters[y % len(filters)]
        out = bytearray([ft])
        for x in range(rb):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ft]
            out.append((line[x] - pred) & 255)
        rows.append(bytes(out))
        prev = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    z = zlib.compress(b"".join(rows))
    parts = [chunk(b"IHDR", ihdr), chunk(b"IDAT", z[:7]), chunk(b"IDAT", z[7:])]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(parts) + chunk(b"IEND", b""))


KINDS = [(0, 8, ()), (0, 16, ()), (2, 8, (3,)), (2, 16, (3,)), (4, 8, (2,)), (6, 8, (4,))]


@pytest.mark.parametrize(("colour", "depth", "extra"), KINDS)
def test_each_filter_and_kind_decodes_exactly(tmp_path, colour, depth, extra):
    rng = np.random.default_rng(colour * 100 + depth)
    hi = 65536 if depth == 16 else 256
    img = rng.integers(0, hi, (13, 9, *extra))
    img[4:9] = img[4:5]  # flat rows too: Paeth's shortcuts
    f = tmp_path / "a.png"
    write_png(f, img, colour, depth, [0, 1, 2, 3, 4, 4, 3, 2, 1])
    got = read_png(f)
    assert got.dtype == (np.uint16 if depth == 16 else np.uint8)
    np.testing.assert_array_equal(got, img)
    if depth == 8:  # PIL reads these the same way
        np.testing.assert_array_equal(got, np.asarray(Image.open(f)))


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB", "RGBA", "P"])
def test_pil_written_files_read_as_pil_reads_them(tmp_path, mode):
    rng = np.random.default_rng(1)
    ids = np.repeat(np.repeat(rng.integers(0, 40, (6, 8)), 7, 0), 11, 1)
    if mode in ("RGB", "RGBA"):
        im = Image.fromarray(
            np.stack([ids * 5, ids, 255 - ids, ids][: len(mode)], -1).astype(np.uint8)
        )
    elif mode == "I;16":
        im = Image.fromarray((ids * 1000 + 7).astype(np.uint16))
    else:
        im = Image.fromarray(ids.astype(np.uint8))
        if mode == "P":
            im = im.convert("P")
    f = tmp_path / "b.png"
    im.save(f)
    np.testing.assert_array_equal(read_png(f), np.asarray(Image.open(f)))


def test_other_files_go_through_pil(tmp_path):
    f = tmp_path / "c.bmp"
    Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6)).save(f)
    np.testing.assert_array_equal(read_png(f), np.arange(30).reshape(5, 6))


def test_bad_files_name_themselves(tmp_path):
    with pytest.raises(DataError, match="missing.png.*label map file not found"):
        read_png(tmp_path / "missing.png", what="label map")
    f = tmp_path / "cut.png"
    write_png(f, np.zeros((20, 20), np.uint8), 0, 8, [0])
    f.write_bytes(f.read_bytes()[:-40])  # IDAT cut short
    with pytest.raises(DataError, match="cut.png"):
        read_png(f)
    g = tmp_path / "big.png"
    write_png(g, np.zeros((20, 20), np.uint8), 0, 8, [0])
    with pytest.raises(DataError, match="big.png.*past the limit"):
        read_png(g, max_pixels=100)
    t = tmp_path / "text.png"
    t.write_text("not a picture")
    with pytest.raises(DataError, match="text.png.*cannot read image"):
        read_png(t)
