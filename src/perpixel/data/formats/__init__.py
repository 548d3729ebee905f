"""Readers of the standard dataset layouts into the one sample format of
`perpixel.data.panoptic` (semantic + instance maps): each a `Reader` with `taxonomy`,
`names`, `len()`, `load(i) -> PanopticSample` and `validate()`.

| kind | reader | layout |
|---|---|---|
| cityscapes | `Cityscapes` | leftImg8bit/ + gtFine/ labelIds and instanceIds |
| kitti | `KITTI` | training/image_2, semantic, instance |
| voc | `VOC` | VOC2012 JPEGImages, SegmentationClass/Object (+ SBD: split train_aug) |
| sbd | `SBD` | benchmark_RELEASE/dataset img, cls/*.mat, inst/*.mat |
| ade20k | `ADE20K` | ADEChallengeData2016 images/, annotations/ (semantic only) |
| coco | `COCOInstances` | annotations/instances_{split}.json + {split}/ |
| coco_panoptic | `COCOPanoptic` | annotations/panoptic_{split}.json + PNGs + {split}/ |
| instance_folder | `InstanceFolder` | images/, masks/, instances/, classes.txt |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from perpixel.data.formats.ade20k import ADE20K
from perpixel.data.formats.cityscapes import Cityscapes
from perpixel.data.formats.coco import COCOInstances, COCOPanoptic
from perpixel.data.formats.common import Reader
from perpixel.data.formats.instance_folder import InstanceFolder
from perpixel.data.formats.kitti import KITTI
from perpixel.data.formats.voc import SBD, VOC
from perpixel.errors import ConfigError

FORMATS: dict[str, Callable[..., Reader]] = {
    "cityscapes": Cityscapes,
    "kitti": KITTI,
    "voc": VOC,
    "sbd": SBD,
    "ade20k": ADE20K,
    "coco": COCOInstances,
    "coco_panoptic": COCOPanoptic,
    "instance_folder": InstanceFolder,
}


def open_dataset(kind: str, root: str | Path, split: str | None = None, **options: Any) -> Reader:
    """The reader of dataset `kind` (a key of `FORMATS`) on `root`; `split` None: the
    reader's default split; `options`: the reader's keyword arguments."""
    if kind not in FORMATS:
        raise ConfigError(f"unknown dataset kind {kind!r}; known: {', '.join(FORMATS)}")
    if split is not None:
        options["split"] = split
    try:
        return FORMATS[kind](root, **options)
    except TypeError as e:
        raise ConfigError(f"dataset kind {kind!r}: {e}") from None


__all__ = [
    "ADE20K",
    "FORMATS",
    "KITTI",
    "SBD",
    "VOC",
    "COCOInstances",
    "COCOPanoptic",
    "Cityscapes",
    "InstanceFolder",
    "Reader",
    "open_dataset",
]
