"""The keypoint task's data: synthetic shapes with exact corners (MagicPoint), a folder of
images with the points homographic adaptation wrote for them, and the (image, warped image)
pairs descriptors learn from.

An item is {"image": (1, H, W) gray in [0, 1], "points": (N, 2) xy, "labels": (H/8, W/8)
cell classes 0..64, "valid": (H/8, W/8) bool, "name"}; with `pairs`, also "warped",
"warped_points", "warped_labels", "warped_valid" and "homography" (3, 3) mapping the image's
pixels to the warped image's.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from perpixel.data.images import list_images, read_image, to_float
from perpixel.data.splits import seeded_split
from perpixel.errors import ConfigError, DataError
from perpixel.models.keypoints import to_gray
from perpixel.tasks.keypoints.homographies import (
    inside,
    sample_homography,
    warp_images,
    warp_mask,
    warp_points,
)
from perpixel.tasks.keypoints.labels import cell_mask, points_to_cells
from perpixel.tasks.keypoints.photometric import photometric_augment
from perpixel.tasks.keypoints.shapes import FAMILIES, sample

ROLES = {"train": 0, "val": 1, "test": 2}
BORDER = 3  # pixels of a warped image's valid region given up at its edge (the reference's)


def fit_image(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) -> (C, h, w): resized (antialiased bilinear) to cover `shape`, keeping the
    aspect ratio, then centre-cropped to it."""
    h, w = shape
    H, W = image.shape[-2:]
    s = max(h / H, w / W)
    size = (max(h, round(H * s)), max(w, round(W * s)))
    if size != (H, W):
        image = F.interpolate(image[None], size, mode="bilinear", antialias=True)[0]
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    return image[:, top : top + h, left : left + w].clamp(0, 1)


def read_gray(path: Path, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """An image file -> (1, H, W) gray in [0, 1], fitted to `shape` when given."""
    rgb = to_float(read_image(path))
    gray = to_gray(rgb)
    return fit_image(gray, shape) if shape is not None else gray


def _generator() -> torch.Generator:
    """A generator seeded from torch's global one (which `SeededItems` seeds per sample)."""
    return torch.Generator().manual_seed(int(torch.randint(2**62, ())))


class KeypointItems(Dataset):
    """The shared part: turn (image, points) into a training item, with photometric and
    homographic augmentation when `train`, and the warped pair when `pairs`."""

    def __init__(self, data: dict, train: bool):
        self.data, self.train = data, train
        self.shape: tuple[int, int] = tuple(data["shape"])  # type: ignore[assignment]
        if any(s % 8 for s in self.shape):
            raise ConfigError(f"data.shape must be multiples of 8, got {list(self.shape)}")

    def _photometric(self, image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return photometric_augment(image, self.data["photometric"], g)

    def _warp(
        self, image: torch.Tensor, points: torch.Tensor, g: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A random homography applied to the image and its points: (warped (1, H, W), points
        inside, pixel validity (1, H, W), H)."""
        H = sample_homography(self.shape, self.data["homography"], g)
        warped = warp_images(image[None], H[None], self.shape)[0]
        valid = warp_mask(self.shape, H[None], self.shape, erode=BORDER)[0]
        moved = warp_points(points, H)
        return warped, moved[inside(moved, self.shape)], valid, H

    def item(self, image: torch.Tensor, points: torch.Tensor, name: str) -> dict:
        g = _generator() if self.train else torch.Generator().manual_seed(zlib.crc32(name.encode()))
        valid = torch.ones(1, *self.shape)
        out: dict = {"name": name}
        if self.data["pairs"]:
            warped, wpoints, wvalid, H = self._warp(image, points, g)
            if self.train and self.data["photometric_train"]:
                warped = self._photometric(warped, g)
            out.update(
                warped=warped,
                warped_points=wpoints,
                warped_labels=points_to_cells([wpoints], self.shape, g)[0],
                warped_valid=cell_mask(wvalid[None])[0],
                homography=H,
            )
        elif self.train and self.data["homographic_train"]:
            image, points, valid, _ = self._warp(image, points, g)
        if self.train and self.data["photometric_train"]:
            image = self._photometric(image, g)
        out.update(
            image=image,
            points=points,
            labels=points_to_cells([points], self.shape, g)[0],
            valid=cell_mask(valid[None])[0],
        )
        return out


class SyntheticShapes(KeypointItems):
    """MagicPoint's synthetic shapes: `num_<role>` images. Validation and test images are fixed
    by (seed, role, index); training images are new every epoch (drawn from the per-sample
    seed the training sampler sets)."""

    def __init__(self, data: dict, role: str, train: bool, seed: int = 0, noise: bool = False):
        super().__init__(data, train)
        families = data["families"]
        unknown = set(families or ()) - set(FAMILIES)
        if unknown:
            raise ConfigError(f"data.families: unknown {sorted(unknown)}; known: {FAMILIES}")
        self.families = tuple(families) if families else None
        self.role, self.seed, self.noise = role, seed, noise
        self.n = int(data[f"num_{role}"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if self.train:
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
        else:
            rng = np.random.default_rng([self.seed, ROLES[self.role], i])
        image, points, family = sample(rng, self.shape, self.families)
        img = torch.from_numpy(image)[None]
        if self.noise:  # the "with noise" evaluation: photometric change, fixed per image
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            img = self._photometric(img, g)
        return self.item(img, torch.from_numpy(points).float(), f"{self.role}_{i:05d}_{family}")


def read_points(path: Path, shape: tuple[int, int]) -> torch.Tensor:
    """The (N, 2) points of a label file written by `perpixel keypoints adapt` (plain arrays:
    "points", "shape"), checked against the image shape they were made for."""
    try:
        with np.load(path, allow_pickle=False) as f:
            points, made = f["points"], tuple(int(s) for s in f["shape"])
    except FileNotFoundError:
        raise DataError(
            path, "no label file for this image (run `perpixel keypoints adapt`)"
        ) from None
    except (OSError, ValueError, KeyError) as e:
        raise DataError(path, f"not a keypoint label file ({e})") from None
    if made != tuple(shape):
        raise DataError(path, f"labels made at shape {list(made)}, the recipe has {list(shape)}")
    if points.ndim != 2 or points.shape[1] != 2:
        raise DataError(path, f"points must be (N, 2), got {points.shape}")
    return torch.from_numpy(points.astype(np.float32))


class LabelledFolder(KeypointItems):
    """The images of `data.root` with the points of `data.labels/NAME.npz`, fitted to
    `data.shape`; a seeded `val_fraction` is held out for validation."""

    def __init__(self, data: dict, role: str, train: bool, seed: int = 0):
        super().__init__(data, train)
        if not data["root"] or not data["labels"]:
            raise ConfigError("data.kind folder needs data.root (images) and data.labels")
        files = list_images(Path(data["root"]))
        split = seeded_split(len(files), {"val": data["val_fraction"], "seed": seed})
        part = split["val" if role in ("val", "test") else "train"]
        self.files = [files[i] for i in part]
        self.labels = Path(data["labels"])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        path = self.files[i]
        image = read_gray(path, self.shape)
        return self.item(
            image, read_points(self.labels / f"{path.stem}.npz", self.shape), path.stem
        )


def build_dataset(data: dict, role: str, train: bool = False, seed: int = 0) -> Dataset:
    """The dataset of a keypoint recipe's `data:` section for `role` (train | val | test)."""
    if data["kind"] == "shapes":
        return SyntheticShapes(data, role, train, seed)
    if data["kind"] == "folder":
        return LabelledFolder(data, role, train, seed)
    raise ConfigError(f"data.kind must be shapes or folder, got {data['kind']!r}")


def collate(batch: list[dict]) -> dict:
    """Stack tensors of equal shape; points (one (N, 2) per image) stay lists."""
    out: dict = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if key in ("points", "warped_points", "name"):
            out[key] = values
        else:
            out[key] = torch.stack(values)
    return out
