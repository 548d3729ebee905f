"""Tests for perpixel.data.panoptic: the sample format's segments, crowd and void rules."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from perpixel.data.panoptic import (
    from_segments,
    id_to_rgb,
    read_panoptic_png,
    rgb_to_id,
    to_segments,
    void_unassigned,
)
from perpixel.data.synthetic import SYNTHETIC, generate
from perpixel.errors import DataError

SEM = np.array([[0, 0, 4, 4], [0, 1, 4, 4], [5, 5, 255, 1]])
INS = np.array([[3, 0, 1, 1], [0, 0, 2, 2], [0, 0, 0, 7]])


def test_to_segments_one_per_stuff_class_and_per_instance_crowd_for_unnumbered_things():
    ids, segs = to_segments(SEM, INS, [4, 5], 255)
    assert ids[2, 2] == 0  # void
    # stuff 0 ignores its instance id 3: one segment; stuff 1 is one segment in two places
    assert len({ids[0, 0], ids[0, 1], ids[1, 0]}) == 1
    assert ids[1, 1] == ids[2, 3]
    assert ids[0, 2] != ids[1, 2]  # two instances of class 4
    crowd = segs[ids[2, 0]]
    assert crowd.category == 5 and crowd.iscrowd
    assert sorted((s.category, s.iscrowd) for s in segs.values()) == [
        (0, False), (1, False), (4, False), (4, False), (5, True)
    ]  # fmt: skip


def test_from_segments_inverts_to_segments_up_to_renumbering():
    for i in range(4):
        s = generate(3, i, height=48, width=64)
        ids, segs = to_segments(s.semantic, s.instances, SYNTHETIC.thing_ids, 255)
        sem, ins = from_segments(ids, segs, 255, SYNTHETIC.thing_ids)
        assert np.array_equal(sem, s.semantic)
        pairs = {(int(a), int(b)) for a, b in zip(ins.ravel(), s.instances.ravel(), strict=True)}
        assert len(pairs) == len(np.unique(s.instances))  # a bijection of instance ids


def test_void_unassigned_voids_only_thing_pixels_without_instance():
    out = void_unassigned(SEM, INS, [4, 5], 255)
    assert (out[2, :2] == 255).all()  # class 5, instance 0
    assert out[0, 1] == 0 and out[0, 2] == 4


@pytest.mark.parametrize("seed", range(3))
def test_coco_png_id_encoding_round_trips(seed):
    ids = np.random.default_rng(seed).integers(0, 2**24, (7, 9))
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (7, 9, 3)
    assert np.array_equal(rgb_to_id(rgb), ids)
    assert rgb_to_id(np.array([[[1, 2, 3]]], np.uint8))[0, 0] == 1 + 2 * 256 + 3 * 65536


def png_bytes(rgb: np.ndarray, filters: list[int]) -> bytes:
    """An 8-bit RGB PNG with the given filter type on each row (cycled)."""
    h, w, _ = rgb.shape
    img = rgb.reshape(h, 3 * w).astype(np.int64)
    rows = []
    for y in range(h):
        ft = filters[y % len(filters)]
        x = img[y]
        b = img[y - 1] if y else np.zeros_like(x)
        a = np.concatenate([[0, 0, 0], x[:-3]])
        c = np.concatenate([[0, 0, 0], b[:-3]])
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = [0 * x, a, b, (a + b) // 2, paeth][ft]
        rows.append(bytes([ft]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    z = zlib.compress(b"".join(rows))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", z[: len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2 :])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def test_png_reader_undoes_every_filter(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (9, 13, 3)).astype(np.uint8)
    rgb[3:6] = rgb[3]  # flat rows too
    path = tmp_path / "a.png"
    for filters in ([0], [1], [2], [3], [4], [0, 1, 2, 3, 4]):
        path.write_bytes(png_bytes(rgb, filters))
        expect = np.asarray(Image.open(path)).astype(np.int64)
        assert np.array_equal(expect, rgb)  # the writer is right
        ids = expect[..., 0] + 256 * expect[..., 1] + 65536 * expect[..., 2]
        assert np.array_equal(read_panoptic_png(path), ids)
    Image.fromarray(rgb).convert("RGBA").save(path)  # not RGB: decoded by PIL
    assert np.array_equal(read_panoptic_png(path), ids)
    path.write_bytes(b"not a png")
    with pytest.raises(DataError, match="a.png"):
        read_panoptic_png(path)
