"""The data module every task trains with: a recipe's `data:` section, the task's dataset
builder and collate function, and loaders that shard exactly under DDP."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

# (data section, role "train" | "val" | "test", train augmentation?, seed) -> dataset
DatasetBuilder = Callable[..., Dataset]


class ShardSampler(Sampler[int]):
    """Every `world`-th index from `rank`, unpadded, so that metrics summed over processes
    count each sample exactly once (torch's DistributedSampler pads with repeats)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class RecipeData(L.LightningDataModule):
    """Train/val/test loaders of `build(data, role, train=..., seed=...)` datasets, batched by
    `collate`; the trainer must be made with `use_distributed_sampler=False`."""

    def __init__(self, data: dict, build: DatasetBuilder, collate: Callable, seed: int = 0):
        super().__init__()
        self.data, self.build, self.collate, self.seed = data, build, collate, seed
        self.datasets: dict[str, Dataset] = {}

    def dataset(self, role: str) -> Dataset:
        if role not in self.datasets:
            self.datasets[role] = self.build(self.data, role, train=role == "train", seed=self.seed)
        return self.datasets[role]

    def _loader(self, role: str, batch_size: int, shuffle: bool) -> DataLoader:
        ds = self.dataset(role)
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        sampler: Sampler | None = None
        if world > 1:
            sampler = (
                DistributedSampler(ds, world, rank, shuffle=True, seed=self.seed)
                if shuffle
                else ShardSampler(len(ds), rank, world)  # type: ignore[arg-type]
            )
            shuffle = False
        n = self.data["num_workers"]
        return DataLoader(
            ds,
            batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=n,
            collate_fn=self.collate,
            persistent_workers=n > 0,
            drop_last=role == "train" and len(ds) > batch_size,  # type: ignore[arg-type]
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.data["batch_size"], True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.data["val_batch_size"], False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.data["val_batch_size"], False)
