"""Segmentation datasets: image/mask pairs on disk (a folder layout, CamVid), checked with
errors that name the file; `build_dataset` and `collate` for a recipe's `data:` section."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from perpixel.data.batching import pad_stack
from perpixel.data.images import IMAGE_SUFFIXES, list_images, read_image, to_float
from perpixel.data.memory import InMemory
from perpixel.data.splits import seeded_split
from perpixel.data.synthetic import synthetic_split
from perpixel.data.taxonomy import CAMVID, DEFAULT_IGNORE, Taxonomy
from perpixel.data.transforms import build_transform
from perpixel.errors import ConfigError, DataError


def read_mask(path: str | Path, taxonomy: Taxonomy, explicit_colors: bool = False) -> np.ndarray:
    """(H, W) uint8 class ids from a single-channel id PNG, or from a colour PNG when the
    taxonomy's colours were given explicitly (each colour maps to its class id)."""
    try:
        with Image.open(path) as im:
            if im.mode in ("L", "I", "I;16") or (im.mode == "P" and not explicit_colors):
                m = np.asarray(im)  # palette masks: the palette index is the class id
            else:
                m = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(path, "mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(path, f"cannot read mask ({e})") from None
    if m.ndim == 3:
        if not explicit_colors:
            if (m[..., 0] == m[..., 1]).all() and (m[..., 1] == m[..., 2]).all():
                return m[..., 0].astype(np.uint8)
            raise DataError(
                path, "colour mask, but the classes file gives no colours to map it to class ids"
            )
        return _colors_to_ids(m, taxonomy, path)
    if m.max(initial=0) > 255:
        raise DataError(path, f"label id {int(m.max())} does not fit the 8-bit label range")
    return m.astype(np.uint8)


def _colors_to_ids(rgb: np.ndarray, taxonomy: Taxonomy, path: Path | str) -> np.ndarray:
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    out = np.full(code.shape, taxonomy.ignore_index, dtype=np.uint8)
    known = np.zeros(code.shape, dtype=bool)
    for i, (r, g, b) in enumerate(taxonomy.colors):
        hit = code == ((r << 16) | (g << 8) | b)
        out[hit], known[hit] = i, True
    if not known.all():
        bad = np.unique(rgb[~known].reshape(-1, 3), axis=0)[:5]
        raise DataError(
            path, f"colours {[tuple(int(v) for v in c) for c in bad]} are not in the classes file"
        )
    return out


def check_labels(mask: np.ndarray, taxonomy: Taxonomy, path: str | Path) -> None:
    """DataError naming `path` when a label id is neither a class nor the ignore value."""
    ids = np.unique(mask)
    bad = [int(i) for i in ids if i >= taxonomy.num_classes and i != taxonomy.ignore_index]
    if bad:
        raise DataError(
            path,
            f"label ids {bad} are outside the taxonomy (classes 0..{taxonomy.num_classes - 1}, "
            f"ignore value {taxonomy.ignore_index})",
        )


class PairedSegmentation(Dataset):
    """Image/mask file pairs -> {"image": (3, H, W) float32 in [0, 1], "mask": (H, W) int64, "name"}.

    Every item is checked: readable files, equal sizes, label ids in the taxonomy.
    `transform(sample) -> sample` is applied last (see `perpixel.data.transforms`).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path | None]],
        taxonomy: Taxonomy,
        transform: Callable[[dict], dict] | None = None,
        explicit_colors: bool = False,
        source: str | Path = "",
    ):
        if not pairs:
            raise DataError(source or None, "no image/mask pairs found (empty split)")
        self.pairs = [(Path(i), None if m is None else Path(m)) for i, m in pairs]
        self.taxonomy = taxonomy
        self.transform = transform
        self.explicit_colors = explicit_colors

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray | None, str]:
        """(H, W, 3) uint8 image, (H, W) uint8 mask or None, name — checked."""
        ipath, mpath = self.pairs[i]
        image = read_image(ipath)
        mask = None
        if mpath is not None:
            mask = read_mask(mpath, self.taxonomy, self.explicit_colors)
            if mask.shape != image.shape[:2]:
                raise DataError(
                    mpath,
                    f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {ipath.name} is "
                    f"{image.shape[1]}x{image.shape[0]} (width x height)",
                )
            check_labels(mask, self.taxonomy, mpath)
        return image, mask, ipath.stem

    def select(self, indices: Sequence[int], source: str | Path = "") -> PairedSegmentation:
        """Keep only the pairs at `indices` (a seeded split); returns self."""
        self.pairs = [self.pairs[i] for i in indices]
        if not self.pairs:
            raise DataError(source or None, "no image/mask pairs in this split (too few images)")
        return self

    def masks(self):
        """Iterate over the masks alone (for class statistics)."""
        for i in range(len(self)):
            yield self.load(i)[1]

    def validate(self) -> None:
        """Load every pair once, raising the first DataError."""
        for i in range(len(self)):
            self.load(i)

    def __getitem__(self, i: int) -> dict:
        image, mask, name = self.load(i)
        sample = {"image": to_float(image), "name": name}
        if mask is not None:
            sample["mask"] = torch.from_numpy(mask.astype(np.int64))
        return self.transform(sample) if self.transform else sample


def find_classes_file(root: Path) -> Path | None:
    for name in ("classes.txt", "classes"):
        if (root / name).is_file():
            return root / name
    return None


class FolderSegmentation(PairedSegmentation):
    """The generic layout: `root[/split]/images/*` and `root[/split]/masks/*.png` with matching
    stems, and a `classes.txt` (one class per line, optionally `name r g b`) in `root`.

    Masks hold class ids (or class colours, when the classes file gives colours); the
    ignore value (default 255) is excluded from training and evaluation.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        transform: Callable[[dict], dict] | None = None,
        taxonomy: Taxonomy | None = None,
        ignore_index: int = DEFAULT_IGNORE,
    ):
        root = Path(root)
        if not root.is_dir():
            raise DataError(root, "data folder not found")
        base = root / split if split else root
        if taxonomy is None:
            cls_file = find_classes_file(root) or find_classes_file(base)
            if cls_file is None:
                raise DataError(root, "no classes.txt naming the classes (one per line)")
            taxonomy = Taxonomy.from_file(cls_file, ignore_index=ignore_index)
        images = list_images(base / "images")
        mask_dir = base / "masks"
        if not mask_dir.is_dir():
            raise DataError(mask_dir, "folder not found (masks must sit beside images/)")
        masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        missing = [p.name for p in images if p.stem not in masks]
        if missing:
            raise DataError(mask_dir, f"no mask for {len(missing)} image(s), e.g. {missing[:3]}")
        pairs = [(p, masks[p.stem]) for p in images]
        super().__init__(pairs, taxonomy, transform, taxonomy.colors_given, base)


class CamVid(PairedSegmentation):
    """CamVid, SegNet's 11-class version: `root/{split}.txt` lists `image label` pairs
    relative to `root`; class 11 is void (ignored)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable[[dict], dict] | None = None,
    ):
        root = Path(root)
        listing = root / f"{split}.txt"
        if not listing.is_file():
            raise DataError(
                listing, f"CamVid split list not found (expected {split}.txt in {root})"
            )
        pairs = []
        for lineno, line in enumerate(listing.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DataError(listing, f"line {lineno}: expected 'image label', got {line!r}")
            pairs.append((root / parts[0], root / parts[1]))
        super().__init__(pairs, CAMVID, transform, source=listing)


def flat_layout(root: Path) -> bool:
    """Whether `root` holds images/ (+ masks/) directly, with no train/val/test subfolders."""
    return (root / "images").is_dir()


def ignore_index_of(data: dict) -> int:
    """The label value that a recipe's `data:` section marks as void."""
    return {"camvid": 11, "folder": data["ignore_index"]}.get(data["kind"], DEFAULT_IGNORE)


def build_dataset(data: dict, role: str, train: bool = False, seed: int = 0) -> Dataset:
    """The dataset playing `role` ("train", "val" or "test"); `data[f"{role}_split"]` names
    the split to read (a folder split, a CamVid list, or a synthetic split; "." = the root)."""
    kind = data["kind"]
    split = data.get(f"{role}_split") or role
    ignore = ignore_index_of(data)
    transform = build_transform(data["augment"], ignore) if train else None
    if kind == "synthetic":
        return InMemory(synthetic_split(data["synthetic"], split, seed), transform)
    if data["root"] is None:
        raise ConfigError(f"data.root is required for {kind!r} data")
    if kind == "camvid":
        return CamVid(data["root"], split, transform)
    if kind == "folder":
        root = Path(data["root"])
        if split == "." or not flat_layout(root):  # "." = the whole flat folder
            return FolderSegmentation(
                root, None if split == "." else split, transform, ignore_index=ignore
            )
        if not data.get("split"):
            raise DataError(
                root,
                f"images/ and masks/ sit directly in this folder, with no {split}/ subfolder; "
                "set data.split to split it at random (e.g. -o 'data.split={val: 0.15, "
                "test: 0.25, seed: 0}'), or make train/, val/ and test/ subfolders",
            )
        ds = FolderSegmentation(root, None, transform, ignore_index=ignore)
        parts = seeded_split(len(ds), data["split"])
        if split not in parts:
            raise ConfigError(f"a seeded split has parts train/val/test, not {split!r}")
        return ds.select(parts[split], f"{root} ({split} part of data.split {data['split']})")
    raise ConfigError(f"unknown data.kind {kind!r}: synthetic, folder or camvid")


def collate(batch: list[dict], ignore_index: int = DEFAULT_IGNORE) -> dict:
    """Stack samples: image (B, 3, H, W), mask (B, H, W) when every sample has one, name.
    Samples of different sizes (portrait and landscape) are padded to the largest at the
    bottom and right: images with 0, masks with `ignore_index`, so padding never counts."""
    out = {"image": pad_stack([b["image"] for b in batch], 0.0), "name": [b["name"] for b in batch]}
    if all("mask" in b for b in batch):
        out["mask"] = pad_stack([b["mask"] for b in batch], ignore_index)
    return out
