"""The one sample format of semantic, instance and panoptic data, and its conversions.

A labelled image is two maps of the same size:

- `semantic` (H, W) integer class ids; the taxonomy's `ignore_index` marks void pixels.
- `instances` (H, W) integer instance ids; 0 = no instance. Ids are unique within the image
  (not within a class). A pixel of a *thing* class with instance 0 belongs to a *crowd*
  region (Cityscapes' group labels such as "cargroup", COCO's `iscrowd`): it counts for
  IoU, but panoptic quality neither matches nor penalises it. Stuff pixels carry instance 0.

Panoptic quality and the COCO panoptic files see the same data as *segments*: an (H, W)
segment-id map (0 = void) and, per segment id, its class and crowd flag. `to_segments` and
`from_segments` convert; `rgb_to_id` / `id_to_rgb` are COCO panoptic's PNG encoding
(id = R + 256 G + 256^2 B).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from perpixel.data import images
from perpixel.errors import DataError

LABEL_DIVISOR = 1000  # Cityscapes' encoding: class * 1000 + instance (instanceIds.png)


@dataclass
class Segment:
    """One segment of a panoptic map: its class id and whether it is a crowd region."""

    category: int
    iscrowd: bool = False


@dataclass
class PanopticSample:
    """image (H, W, 3) uint8 RGB; semantic (H, W) uint8 class ids (ignore_index = void);
    instances (H, W) int32, 0 = none (see the module docstring); name: the file stem."""

    image: np.ndarray
    semantic: np.ndarray
    instances: np.ndarray
    name: str = ""


def to_segments(
    semantic: np.ndarray,
    instances: np.ndarray,
    things: Sequence[int],
    ignore_index: int,
) -> tuple[np.ndarray, dict[int, Segment]]:
    """(semantic, instances) -> (segment-id map (H, W) int64 with 0 = void, segments).

    Each stuff class present is one segment; each (thing class, instance id > 0) pair is one
    segment; the thing pixels of a class with instance 0 form that class's crowd segment.
    Segment ids are 1, 2, ... in order of (class, instance).
    """
    semantic = np.asarray(semantic).astype(np.int64)
    inst = np.asarray(instances).astype(np.int64)
    is_thing = np.zeros(max(int(semantic.max(initial=0)), ignore_index, *things, 0) + 1, bool)
    is_thing[list(things)] = True
    valid = semantic != ignore_index
    # stuff pixels ignore their instance id; one key per (class, instance)
    key = semantic * (int(inst.max(initial=0)) + 1) + np.where(is_thing[semantic], inst, 0)
    keys, first, seg = np.unique(key[valid], return_index=True, return_inverse=True)
    out = np.zeros(semantic.shape, np.int64)
    out[valid] = seg + 1
    cls, ins = semantic[valid][first], np.where(is_thing[semantic], inst, 0)[valid][first]
    segments = {
        j + 1: Segment(int(c), bool(is_thing[c] and i == 0))
        for j, (c, i) in enumerate(zip(cls, ins, strict=True))
    }
    return out, segments


def from_segments(
    ids: np.ndarray,
    segments: dict[int, Segment],
    ignore_index: int,
    things: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(segment-id map, segments) -> (semantic uint8, instances int32), the inverse of
    `to_segments` up to renumbering: non-crowd segments of the `things` classes (None: of
    every class) get instances 1, 2, ... in segment-id order; void and ids missing from
    `segments` become `ignore_index`."""
    thing = None if things is None else set(things)
    values, inverse = np.unique(np.asarray(ids).astype(np.int64), return_inverse=True)
    category = np.full(len(values), ignore_index, np.int64)
    numbered = np.zeros(len(values), bool)  # gets an instance id
    for j, v in enumerate(values.tolist()):
        seg = segments.get(v) if v > 0 else None
        if seg is not None:
            category[j] = seg.category
            numbered[j] = not seg.iscrowd and (thing is None or seg.category in thing)
    instance = np.where(numbered, np.cumsum(numbered), 0)
    inverse = inverse.reshape(np.shape(ids))
    return category.astype(np.uint8)[inverse], instance.astype(np.int32)[inverse]


def void_unassigned(
    semantic: np.ndarray, instances: np.ndarray, things: Sequence[int], ignore_index: int
) -> np.ndarray:
    """A *prediction*'s semantic map with its thing pixels of instance 0 (grouped to no
    instance) made void, so they form no crowd segment: predictions have no crowd."""
    is_thing = np.zeros(max(int(np.max(semantic, initial=0)), ignore_index) + 1, bool)
    is_thing[list(things)] = True
    semantic = np.asarray(semantic)
    return np.where(is_thing[semantic] & (np.asarray(instances) == 0), ignore_index, semantic)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 COCO panoptic PNG -> (H, W) int64 segment ids."""
    rgb = np.asarray(rgb).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) segment ids (< 2^24) -> (H, W, 3) uint8, the inverse of `rgb_to_id`."""
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], -1).astype(np.uint8)


@numba.njit(cache=True, nogil=True)
def _png_ids(raw: np.ndarray, h: int, w: int) -> np.ndarray:
    """Inflated IDAT of an 8-bit RGB non-interlaced PNG -> (H * W,) uint32 segment ids:
    undoes the per-row filters (None, Sub, Up, Average, Paeth) on two row buffers."""
    rb = 3 * w
    prev, cur = np.zeros(rb, np.int32), np.zeros(rb, np.int32)
    out = np.empty(h * w, np.uint32)
    for y in range(h):
        ft, line = raw[y * (rb + 1)], raw[y * (rb + 1) + 1 : (y + 1) * (rb + 1)]
        if ft == 0:
            for x in range(rb):
                cur[x] = line[x]
        elif ft == 1:
            for x in range(rb):
                cur[x] = (line[x] + (cur[x - 3] if x >= 3 else 0)) & 255
        elif ft == 2:
            for x in range(rb):
                cur[x] = (line[x] + prev[x]) & 255
        elif ft == 3:
            for x in range(rb):
                cur[x] = (line[x] + (((cur[x - 3] if x >= 3 else 0) + prev[x]) >> 1)) & 255
        elif ft == 4:
            for x in range(3):
                cur[x] = (line[x] + prev[x]) & 255
            for x in range(3, rb):
                a, b, c = cur[x - 3], prev[x], prev[x - 3]
                if b == c:  # pa = 0: a (most pixels: regions are flat)
                    p = a
                elif a == c:  # pb = 0 < pa: b
                    p = b
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + p) & 255
        else:
            raise ValueError("unknown PNG filter type")
        for x in range(w):
            out[y * w + x] = cur[3 * x] | (cur[3 * x + 1] << 8) | (cur[3 * x + 2] << 16)
        prev, cur = cur, prev
    return out


def read_panoptic_png(path: str | Path) -> np.ndarray:
    """A COCO panoptic PNG -> (H, W) integer segment ids (`rgb_to_id`), DataError naming it
    when unreadable. 8-bit RGB non-interlaced files (what COCO and Cityscapes write) are
    decoded here with zlib + `_png_ids`, about twice as fast as PIL then `rgb_to_id` (the
    PQ benchmark's decoding is most of its time); any other kind, or one past the pixel
    limit, goes through `read_image`."""
    try:
        data = Path(path).read_bytes()
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            fast = data[24:29] == b"\x08\x02\x00\x00\x00"  # depth 8, RGB, deflate, no interlace
            if fast and w * h <= images.MAX_PIXELS:
                idat, pos = [], 8
                while pos + 8 <= len(data):
                    n, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
                    if kind == b"IDAT":
                        idat.append(data[pos + 8 : pos + 8 + n])
                    pos += 12 + n
                raw = zlib.decompress(b"".join(idat), bufsize=h * (3 * w + 1))
                if len(raw) != h * (3 * w + 1):
                    raise ValueError(f"image data is {len(raw)} bytes, not {h * (3 * w + 1)}")
                return _png_ids(np.frombuffer(raw, np.uint8), h, w).reshape(h, w)
        return rgb_to_id(images.read_image(path))
    except (OSError, ValueError, zlib.error) as e:
        raise DataError(path, f"cannot read the panoptic PNG ({e})") from None
