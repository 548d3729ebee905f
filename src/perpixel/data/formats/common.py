"""What every dataset reader shares: the reader base class, label-map reading, checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from perpixel.data.panoptic import PanopticSample
from perpixel.data.png import read_png
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import DataError


class Reader:
    """A dataset layout read as `PanopticSample`s. Subclasses set `taxonomy`, `names` (one
    per sample, the file stem) and implement `load`."""

    taxonomy: Taxonomy
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> PanopticSample:
        raise NotImplementedError

    def __getitem__(self, i: int) -> PanopticSample:
        return self.load(i)

    def __iter__(self) -> Iterator[PanopticSample]:
        return (self.load(i) for i in range(len(self)))

    def validate(self) -> None:
        """Load every sample once, raising the first DataError."""
        for i in range(len(self)):
            self.load(i)


def split_folder(root: Path, sub: str, what: str) -> Path:
    """`root / sub`, or DataError naming it when it is not a folder."""
    folder = root / sub
    if not folder.is_dir():
        raise DataError(folder, f"{what} folder not found")
    return folder


def read_label(path: Path, allow_rgb: bool = False) -> np.ndarray:
    """A label PNG as stored: (H, W) int64 (palette indices, 8- or 16-bit values), or with
    `allow_rgb` an (H, W, 3) array for RGB files. DataError naming the file otherwise."""
    m = read_png(path, what="label map")
    if m.ndim == 2:
        return m.astype(np.int64)
    if allow_rgb and m.shape[2] in (3, 4):
        return m[..., :3]
    raise DataError(path, f"label map has {m.shape[2]} channels; expected one")


def check_size(image: np.ndarray, label: np.ndarray, path: Path, image_path: Path) -> None:
    """DataError naming `path` when `label` is not the size of `image`."""
    if label.shape[:2] != image.shape[:2]:
        h, w = label.shape[:2]
        raise DataError(
            path,
            f"label map is {w}x{h} but its image {image_path.name} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height)",
        )


def check_classes(semantic: np.ndarray, tax: Taxonomy, path: Path) -> None:
    """DataError naming `path` when `semantic` holds values that are neither a class id nor
    the ignore index."""
    bad = (semantic >= tax.num_classes) & (semantic != tax.ignore_index)
    if bad.any():
        values = np.unique(semantic[bad])[:5].tolist()
        raise DataError(
            path,
            f"label values {values} are not class ids 0..{tax.num_classes - 1} nor the "
            f"ignore value {tax.ignore_index}",
        )


def renumber(ids: np.ndarray) -> np.ndarray:
    """(H, W) ids, 0 = none -> int32 with the distinct positive ids renumbered 1..N in
    ascending order (0 stays 0)."""
    values, inverse = np.unique(ids, return_inverse=True)
    new = np.cumsum(values > 0).astype(np.int32)
    new[values <= 0] = 0
    return new[inverse.reshape(ids.shape)]


def thing_table(tax: Taxonomy) -> np.ndarray:
    """(256,) bool: class id -> whether it is a thing class."""
    table = np.zeros(256, bool)
    table[tax.thing_ids] = True
    return table


def stem_map(folder: Path, suffix: str = "") -> dict[str, Path]:
    """{file name minus `suffix` (or stem): path} of the files in `folder`."""
    out = {}
    for p in folder.iterdir():
        if suffix:
            if p.name.endswith(suffix):
                out[p.name[: -len(suffix)]] = p
        elif p.is_file():
            out[p.stem] = p
    return out
