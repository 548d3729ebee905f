"""Keep a dataset's samples in memory (compactly, as uint8) so each is made or read once."""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import cast

import torch
from torch.utils.data import Dataset


class InMemory(Dataset):
    """Materialise `dataset[i]` for every i up front; `transform` runs on every access.

    Images are stored as uint8 (3, H, W), masks as uint8 when the ids fit (else int64), so
    2000 synthetic 128x128 samples take ~130 MB. Items are the usual sample dicts.
    """

    def __init__(self, dataset: Dataset, transform: Callable[[dict], dict] | None = None):
        self.taxonomy = getattr(dataset, "taxonomy", None)
        self.transform = transform
        self.items = []
        for i in range(len(cast(Sized, dataset))):
            s = dict(dataset[i])
            s["image"] = (s["image"] * 255).round_().to(torch.uint8)
            for key in ("mask", "instances"):
                if key in s and s[key].max() <= 255 and s[key].min() >= 0:
                    s[key] = s[key].to(torch.uint8)
            self.items.append(s)

    def __len__(self) -> int:
        return len(self.items)

    def masks(self):
        """Iterate over the un-augmented (H, W) masks (for class statistics)."""
        for s in self.items:
            yield s["mask"].numpy()

    def __getitem__(self, i: int) -> dict:
        s = dict(self.items[i])
        s["image"] = s["image"].float().div_(255)
        for key in ("mask", "instances"):
            if key in s:
                s[key] = s[key].long()
        return self.transform(s) if self.transform else s
