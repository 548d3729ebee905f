"""Datasets and loaders from a config's `data` section."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from perpixel.data.folder import CamVid, FolderSegmentation
from perpixel.data.memory import InMemory
from perpixel.data.synthetic import SyntheticSegmentation
from perpixel.data.transforms import build_transform
from perpixel.errors import ConfigError

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def build_dataset(data: dict, role: str, train: bool = False, seed: int = 0) -> Dataset:
    """The dataset playing `role` ("train", "val" or "test"); `data[f"{role}_split"]` names
    the split to read (a folder split, a CamVid list, or a synthetic split; "." = the root)."""
    kind = data["kind"]
    split = data.get(f"{role}_split") or role
    ignore = {"camvid": 11, "folder": data["ignore_index"]}.get(kind, 255)
    transform = build_transform(data["augment"], ignore) if train else None
    if kind == "synthetic":
        conf = dict(data["synthetic"])
        if split not in SPLIT_SEEDS:
            raise ConfigError(f"synthetic data has splits train/val/test, not {split!r}")
        n = conf[f"num_{split}"]
        conf = {k: v for k, v in conf.items() if not k.startswith("num_")}
        return InMemory(
            SyntheticSegmentation(n, seed=1000 * seed + SPLIT_SEEDS[split], **conf), transform
        )
    if data["root"] is None:
        raise ConfigError(f"data.root is required for {kind!r} data")
    if kind == "camvid":
        return CamVid(data["root"], split, transform)
    if kind == "folder":
        return FolderSegmentation(
            data["root"], None if split == "." else split, transform, ignore_index=ignore
        )
    raise ConfigError(f"unknown data.kind {kind!r}: synthetic, folder or camvid")


class ShardSampler(Sampler[int]):
    """Every `world`-th index from `rank`, unpadded, so that metrics summed over processes
    count each sample exactly once (torch's DistributedSampler pads with repeats)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def collate(batch: list[dict]) -> dict:
    out = {"image": torch.stack([b["image"] for b in batch]), "name": [b["name"] for b in batch]}
    if all("mask" in b for b in batch):
        out["mask"] = torch.stack([b["mask"] for b in batch])
    return out


class SegmentationData(L.LightningDataModule):
    """Train/val/test loaders; the trainer must be made with `use_distributed_sampler=False`."""

    def __init__(self, data: dict, seed: int = 0):
        super().__init__()
        self.data, self.seed = data, seed
        self.datasets: dict[str, Dataset] = {}

    def dataset(self, split: str) -> Dataset:
        if split not in self.datasets:
            self.datasets[split] = build_dataset(
                self.data, split, train=split == "train", seed=self.seed
            )
        return self.datasets[split]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        if world > 1:
            sampler = (
                DistributedSampler(ds, world, rank, shuffle=True, seed=self.seed)
                if shuffle
                else ShardSampler(len(ds), rank, world)
            )
            shuffle = False
        else:
            sampler = None
        n = self.data["num_workers"]
        return DataLoader(
            ds,
            batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=n,
            collate_fn=collate,
            persistent_workers=n > 0,
            drop_last=split == "train" and len(ds) > batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.data["batch_size"], True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.data["val_batch_size"], False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.data["val_batch_size"], False)
