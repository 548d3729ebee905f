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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from perpixel.data import images, png

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


def rgb_to_id(rgb: np.ndarray, dtype: npt.DTypeLike = np.int64) -> np.ndarray:
    """(H, W, 3) (or RGBA) uint8 COCO panoptic PNG -> (H, W) segment ids of `dtype`."""
    rgb = np.asarray(rgb)
    r, g, b = (rgb[..., i].astype(dtype) for i in range(3))
    return r | (g << 8) | (b << 16)


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) segment ids (< 2^24) -> (H, W, 3) uint8, the inverse of `rgb_to_id`."""
    ids = np.asarray(ids).astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], -1).astype(np.uint8)


def read_panoptic_png(path: str | Path) -> np.ndarray:
    """A COCO panoptic PNG -> (H, W) uint32 segment ids (`rgb_to_id`), DataError naming it
    when unreadable or not RGB. Decoded by `png.read_png` (ISA-L + numba, 3-5x PIL: the
    PQ evaluation of files is mostly decoding)."""
    rgb = png.read_png(path, what="panoptic PNG")
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.dtype != np.uint8:
        rgb = images.read_image(path)  # grey, palette, 16-bit: PIL's conversion to RGB
    return rgb_to_id(rgb, np.uint32)
