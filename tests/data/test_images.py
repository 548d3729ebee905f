"""Reading images: the pixel limit is checked on the header before decoding, names the file
and can be raised; Pillow's own decompression-bomb guard stays quiet below our limit; the
strip-by-strip RGB conversion reads every mode as Pillow's convert("RGB") does."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from perpixel.data import images
from perpixel.data.images import ImageFolder, read_image, set_max_pixels
from perpixel.errors import ConfigError, DataError


def png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header says width x height (RGB) but holds almost no data: cheap to
    write, and a reader that decoded it before checking its size would fail or blow up."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "width, height",
    [(20000, 10000), (60000, 50000)],  # past our limit; past twice Pillow's raised threshold
)
def test_header_past_the_limit_is_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "huge.png"
    png_header_only(path, width, height)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as e:
            read_image(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and len(msg.splitlines()) == 1
    assert f"{width * height:,} pixels" in msg
    assert "past the limit of 150,000,000 pixels" in msg and "--max-pixels N" in msg
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_the_limit_can_be_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", images.MAX_PIXELS)  # restored after the test
    rgb = np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(DataError, match=r"a\.png: 100x80 image \(8,000 pixels\) is past the limit"):
        read_image(path, max_pixels=7999)
    np.testing.assert_array_equal(read_image(path, max_pixels=8000), rgb)  # the limit is inclusive
    set_max_pixels(5000)
    with pytest.raises(DataError, match="past the limit of 5,000 pixels"):
        ImageFolder(path)[0]
    set_max_pixels(8000)
    np.testing.assert_array_equal(read_image(path), rgb)
    with pytest.raises(ConfigError, match="--max-pixels"):
        set_max_pixels(0)


def test_pillow_guard_is_raised_to_our_limit_not_lowered(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((80, 100, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's guard below our limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the read
        read_image(path, max_pixels=10_000)
    assert Image.MAX_IMAGE_PIXELS == 10_000
    read_image(path, max_pixels=9000)
    assert Image.MAX_IMAGE_PIXELS == 10_000  # never lowered
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # turned off by someone: stays off
    read_image(path, max_pixels=10_000)
    assert Image.MAX_IMAGE_PIXELS is None


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "I;16", "CMYK"])
def test_strips_read_every_mode_as_pillow_converts_it(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(images, "STRIP_PIXELS", 7 * 45)  # 7 rows a strip: 9 strips, one short
    rng = np.random.default_rng(1)
    im = Image.fromarray(rng.integers(0, 256, (59, 45, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    im.save(path)
    with Image.open(path) as ref:
        expected = np.array(ref.convert("RGB"))
    got = read_image(path)
    assert got.shape == (59, 45, 3) and got.dtype == np.uint8 and got.flags.writeable
    np.testing.assert_array_equal(got, expected)


def test_image_folder_as_uint8(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    item = ImageFolder(tmp_path, as_uint8=True)[0]
    assert item["name"] == "a" and item["image"].dtype == np.uint8
    np.testing.assert_array_equal(item["image"], rgb)
