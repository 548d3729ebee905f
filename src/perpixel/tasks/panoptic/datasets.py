"""Panoptic datasets: the synthetic world with its instance maps, or any reader of
`perpixel.data.formats` (Cityscapes, KITTI, VOC + SBD, ADE20K, COCO, COCO panoptic, an
instance folder), as sample dicts {"image", "mask", "instances", "name"}."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from perpixel.data.batching import pad_stack
from perpixel.data.images import to_float
from perpixel.data.memory import InMemory
from perpixel.data.synthetic import synthetic_split
from perpixel.data.taxonomy import DEFAULT_IGNORE
from perpixel.data.transforms import build_transform
from perpixel.errors import ConfigError


class ReaderDataset(Dataset):
    """A format reader's samples as dicts: "image" (3, H, W) float32 in [0, 1], "mask"
    (H, W) int64 class ids (the taxonomy's ignore value = void), "instances" (H, W) int64
    (0 = none), "name"; `transform(sample)` last."""

    def __init__(self, reader, transform: Callable[[dict], dict] | None = None):
        self.reader, self.transform = reader, transform
        self.taxonomy = reader.taxonomy

    def __len__(self) -> int:
        return len(self.reader)

    def validate(self) -> None:
        """Read every sample once, raising the first DataError (naming the file)."""
        self.reader.validate()

    def __getitem__(self, i: int) -> dict:
        s = self.reader.load(i)
        item = {
            "image": to_float(s.image),
            "mask": torch.from_numpy(s.semantic.astype(np.int64)),
            "instances": torch.from_numpy(s.instances.astype(np.int64)),
            "name": s.name,
        }
        return self.transform(item) if self.transform else item


def build_dataset(data: dict, role: str, train: bool = False, seed: int = 0) -> Dataset:
    """The dataset playing `role` ("train", "val" or "test") of a recipe's `data:`."""
    from perpixel.data.formats import FORMATS, open_dataset

    kind = data["kind"]
    split = data.get(f"{role}_split") or role
    transform = build_transform(data["augment"], DEFAULT_IGNORE) if train else None
    if kind == "synthetic":
        return InMemory(synthetic_split(data["synthetic"], split, seed, instances=True), transform)
    if kind not in FORMATS:
        raise ConfigError(f"unknown data.kind {kind!r}: synthetic or one of {sorted(FORMATS)}")
    if data["root"] is None:
        raise ConfigError(f"data.root is required for {kind!r} data")
    reader = open_dataset(kind, data["root"], None if split == "." else split)  # ".": the root
    if transform is not None and reader.taxonomy.ignore_index != DEFAULT_IGNORE:
        transform = build_transform(data["augment"], reader.taxonomy.ignore_index)
    return ReaderDataset(reader, transform)


def collate(batch: list[dict], ignore_index: int = DEFAULT_IGNORE) -> dict:
    """Stack samples padded at the bottom and right to the largest: image (B, 3, H, W) with
    0, mask (B, H, W) with `ignore_index`, instances with 0; "size" keeps each (h, w)."""
    out = {
        "image": pad_stack([b["image"] for b in batch], 0.0),
        "name": [b["name"] for b in batch],
        "size": [tuple(b["image"].shape[-2:]) for b in batch],
    }
    if all("mask" in b for b in batch):
        out["mask"] = pad_stack([b["mask"] for b in batch], ignore_index)
        out["instances"] = pad_stack([b["instances"] for b in batch], 0)
    return out
