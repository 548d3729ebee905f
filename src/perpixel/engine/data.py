"""The data module every task trains with: a recipe's `data:` section, the task's dataset
builder and collate function, and loaders that shard exactly under DDP.

Training randomness is counter-based: epoch e's order is drawn from (seed, e), and sample
i's augmentation from its own generator seeded by (seed, e, i). So a run is the same with
any number of workers, and a run resumed from the end of epoch e continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

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


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (a deterministic, well-spread combination)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = ((h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & 0x7FFFFFFFFFFFFFFF


class EpochSampler(Sampler[tuple[int, int]]):
    """Training order: the indices shuffled by (seed, epoch), each with its own sample seed;
    under DDP, rank `rank` of `world` takes every world-th index (padded with repeats so that
    every rank runs the same number of batches). Lightning calls `set_epoch` every epoch."""

    def __init__(self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1):
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = list(range(self.n))
        if self.shuffle:
            g = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=g).tolist()
        order += order[: len(self) * self.world - self.n]
        for i in order[self.rank :: self.world]:
            yield i, _mix(self.seed, self.epoch, i)


class SeededItems(Dataset):
    """`dataset[i]` drawn with torch's global generator seeded by the sampler's seed for that
    item (and restored afterwards): augmentations depend on (seed, epoch, index) alone."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


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

    def _loader(self, role: str, batch_size: int) -> DataLoader:
        ds: Dataset = self.dataset(role)
        size = len(ds)  # type: ignore[arg-type]
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        sampler: Sampler | None = None
        if role == "train":
            sampler = EpochSampler(size, self.seed, True, rank, world)
            ds = SeededItems(ds)
        elif world > 1:
            sampler = ShardSampler(size, rank, world)
        n = self.data["num_workers"]
        return DataLoader(
            ds,
            batch_size,
            sampler=sampler,
            num_workers=n,
            collate_fn=self.collate,
            persistent_workers=n > 0,
            drop_last=role == "train" and size > batch_size,
            # the loader's own generator: creating it never draws from the global one, which
            # dropout uses (and checkpoints restore)
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.data["batch_size"])

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.data["val_batch_size"])

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.data["val_batch_size"])
