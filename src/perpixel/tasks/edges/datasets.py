"""Edge-detection data: BSDS500 with every annotator, and the synthetic world's boundaries.

A sample is a dict:
    "image": (3, H, W) float32 RGB in [0, 1]
    "edges": (1, H, W) float32, the fraction c / N of the N annotators marking each pixel
             (`IGNORE` = -1 on padding added by a crop: not scored)
    "annotators": int N
    "name": image id
Training augmentation is `perpixel.data.transforms.build_transform`: it moves the edge map
with the image. `build_dataset` and `collate` serve a recipe's `data:` section.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from perpixel.data.batching import pad_stack
from perpixel.data.images import IMAGE_SUFFIXES, read_image, to_float
from perpixel.data.synthetic import SPLIT_SEEDS, check_conf, generate
from perpixel.data.transforms import EDGE_IGNORE, build_transform
from perpixel.errors import ConfigError, DataError
from perpixel.tasks.edges.bsds.files import read_groundtruth

IGNORE = EDGE_IGNORE  # the loss's IGNORE: crop padding is not scored


class EdgeDataset(Dataset):
    """Base: subclasses implement `load(i) -> (image (H, W, 3) uint8, counts (H, W) uint8, N,
    name)`; with `cache`, everything is loaded once, up front (compact uint8 arrays)."""

    transform: Callable[[dict], dict] | None = None
    _cache: list | None = None

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, int, str]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def _get(self, i: int) -> tuple[np.ndarray, np.ndarray, int, str]:
        return self._cache[i] if self._cache is not None else self.load(i)

    def fill_cache(self) -> None:
        self._cache = None
        self._cache = [self.load(i) for i in range(len(self))]

    def validate(self) -> None:
        """Load every item once, raising the first DataError."""
        for i in range(len(self)):
            self._get(i)

    def edge_maps(self) -> Iterator[tuple[np.ndarray, int]]:
        """Un-augmented (H, W) float32 fraction maps and their annotator counts (for beta)."""
        for i in range(len(self)):
            _, counts, n, _ = self._get(i)
            yield counts.astype(np.float32) / n, n

    def __getitem__(self, i: int) -> dict:
        image, counts, n, name = self._get(int(i))
        sample = {
            "image": to_float(image),
            "edges": torch.from_numpy(counts).float().div_(n)[None],
            "annotators": n,
            "name": name,
        }
        return self.transform(sample) if self.transform else sample


def find_layout(root: Path, split: str) -> tuple[Path, Path]:
    """(images dir, groundTruth dir) of `split` under root = .../bsds500, BSR, BSR/BSDS500 or
    BSR/BSDS500/data."""
    for base in (root, root / "data", root / "BSDS500" / "data"):
        if (base / "images").is_dir() and (base / "groundTruth").is_dir():
            images, gts = base / "images" / split, base / "groundTruth" / split
            if not images.is_dir():
                raise DataError(images, f"split folder not found (split {split!r})")
            if not gts.is_dir():
                raise DataError(gts, f"ground-truth folder not found (split {split!r})")
            return images, gts
    raise DataError(
        root,
        "no BSDS500 layout here: expected images/<split>/*.jpg and groundTruth/<split>/*.mat "
        "(or the download's BSR/BSDS500/data/...)",
    )


class BSDS500(EdgeDataset):
    """BSDS500 images with the boundaries of all their annotators.

    Args:
        root: a folder holding `images/<split>` and `groundTruth/<split>`, or the original
            download (`BSR`, `BSR/BSDS500` or `BSR/BSDS500/data`).
        split: "train", "val", "test", or several joined by "+" ("train+val").
        transform: applied to each sample dict (see `perpixel.data.transforms.build_transform`).
        cache: load every image and ground truth up front (~0.6 MB per image).
        limit: keep only the first `limit` images (sorted by id), e.g. a quick validation.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable[[dict], dict] | None = None,
        cache: bool = False,
        limit: int | None = None,
    ):
        root = Path(root)
        if not root.is_dir():
            raise DataError(root, "BSDS500 folder not found")
        self.root, self.split, self.transform = root, split, transform
        self.items: list[tuple[Path, Path]] = []
        for part in split.split("+"):
            images_dir, gt_dir = find_layout(root, part)
            images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise DataError(images_dir, "no images in this folder")
            missing = [p.name for p in images if not (gt_dir / f"{p.stem}.mat").is_file()]
            if missing:
                raise DataError(
                    gt_dir, f"no ground-truth .mat for {len(missing)} image(s), e.g. {missing[:3]}"
                )
            self.items += [(p, gt_dir / f"{p.stem}.mat") for p in images]
        if limit is not None:
            self.items = self.items[: int(limit)]
        if cache:
            self.fill_cache()

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, int, str]:
        ipath, gpath = self.items[i]
        image = read_image(ipath)
        gt = read_groundtruth(gpath)
        if gt.boundaries.shape[1:] != image.shape[:2]:
            h, w = gt.boundaries.shape[1:]
            raise DataError(
                gpath,
                f"annotations are {w}x{h} but the image {ipath.name} is "
                f"{image.shape[1]}x{image.shape[0]} (width x height)",
            )
        counts = gt.boundaries.sum(0).astype(np.uint8)
        return image, counts, len(gt), ipath.stem


class SyntheticEdges(EdgeDataset):
    """The synthetic world's boundary maps as edge targets (one annotator).

    Sample i is `perpixel.data.synthetic.generate(seed, i, **conf)`; all are generated up
    front (deterministic from the seed).
    """

    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        transform: Callable[[dict], dict] | None = None,
        **conf,
    ):
        self.conf = check_conf(conf)
        self.num_samples, self.seed, self.transform = int(num_samples), int(seed), transform
        self.fill_cache()

    def __len__(self) -> int:
        return self.num_samples

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, int, str]:
        if not 0 <= i < self.num_samples:
            raise IndexError(f"synthetic: index {i} out of range for {self.num_samples} samples")
        s = generate(self.seed, i, **self.conf)
        return s.image, s.boundaries.astype(np.uint8), 1, f"synthetic_{self.seed}_{i:06d}"


def collate(batch: list[dict]) -> dict:
    """Stack samples; different sizes are padded to the largest (image 0, edges IGNORE) at the
    bottom and right. Returns image (B, 3, H, W), edges (B, 1, H, W), annotators (B,), name."""
    return {
        "image": pad_stack([b["image"] for b in batch], 0.0),
        "edges": pad_stack([b["edges"] for b in batch], IGNORE),
        "annotators": torch.tensor([int(b["annotators"]) for b in batch]),
        "name": [b["name"] for b in batch],
    }


def build_dataset(data: dict, role: str, train: bool = False, seed: int = 0) -> Dataset:
    """The edge dataset playing `role` ("train", "val" or "test") of a config `data` section."""
    split = data.get(f"{role}_split") or role
    if role == "train" and not data.get("train_split") and data["kind"] == "bsds500":
        split = "train+val"
    transform = build_transform(data["augment"]) if train else None
    limit = data["val_limit"] if role == "val" else None
    if data["kind"] == "synthetic":
        if split not in SPLIT_SEEDS:
            raise ConfigError(f"synthetic data has splits train/val/test, not {split!r}")
        conf = {k: v for k, v in data["synthetic"].items() if not k.startswith("num_")}
        n = data["synthetic"][f"num_{split}"]
        n = min(n, limit) if limit else n
        return SyntheticEdges(n, seed=1000 * seed + SPLIT_SEEDS[split], transform=transform, **conf)
    if data["kind"] == "bsds500":
        if data["root"] is None:
            raise ConfigError("data.root is required for bsds500 data")
        return BSDS500(data["root"], split, transform, cache=data["cache"], limit=limit)
    raise ConfigError(f"unknown edge data.kind {data['kind']!r}: synthetic or bsds500")
