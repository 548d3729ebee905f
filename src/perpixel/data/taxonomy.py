"""Class taxonomies: names, display colours and the ignore value."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from perpixel.errors import DataError

DEFAULT_IGNORE = 255


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """`n` well-separated RGB colours (golden-ratio hue walk)."""
    out = []
    for i in range(n):
        h = (i * 0.618033988749895) % 1.0
        s = 0.65 if i % 2 else 0.9
        v = 0.95 if i % 3 else 0.75
        r, g, b = colorsys.hsv_to_rgb(h, s, v)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


@dataclass
class Taxonomy:
    """The classes of a segmentation task.

    Args:
        names: class names; class id = position in the list.
        colors: one (r, g, b) per class; generated when omitted.
        ignore_index: label value excluded from training and evaluation.
        things: names of countable *thing* classes (the rest are *stuff*).
        categories: one category name per class (Cityscapes: flat, construction, object,
            nature, sky, human, vehicle), for category-level scores; empty: none declared.
    """

    names: list[str]
    colors: list[tuple[int, int, int]] = field(default_factory=list)
    ignore_index: int = DEFAULT_IGNORE
    things: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    colors_given: bool = field(default=False, init=False)  # colours came from the user

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.colors_given = bool(self.colors)
        if not self.colors:
            self.colors = default_colors(len(self.names))
        self.colors = cast(
            list[tuple[int, int, int]], [tuple(int(v) for v in c) for c in self.colors]
        )
        if len(self.colors) != len(self.names):
            raise ValueError(f"{len(self.names)} class names but {len(self.colors)} colours")
        if 0 <= self.ignore_index < len(self.names):
            raise ValueError(f"ignore_index {self.ignore_index} collides with a class id")
        unknown = set(self.things) - set(self.names)
        if unknown:
            raise ValueError(f"things {sorted(unknown)} are not class names")
        self.categories = [str(c) for c in self.categories]
        if self.categories and len(self.categories) != len(self.names):
            raise ValueError(f"{len(self.names)} classes but {len(self.categories)} categories")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def thing_ids(self) -> list[int]:
        """Class ids of the thing classes, ascending."""
        return [i for i, n in enumerate(self.names) if n in set(self.things)]

    @property
    def category_names(self) -> list[str]:
        """The distinct categories, in order of first appearance (empty: none declared)."""
        return list(dict.fromkeys(self.categories))

    def category_lut(self) -> np.ndarray:
        """(num_classes,) int64: class id -> index into `category_names`."""
        names = self.category_names
        if not names:
            raise ValueError("this taxonomy declares no categories")
        return np.array([names.index(c) for c in self.categories], dtype=np.int64)

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 lookup table: class id -> colour; ignore and unknown ids are black."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        return lut

    def colorize(self, label: np.ndarray) -> np.ndarray:
        """(H, W) integer labels -> (H, W, 3) uint8 colour image."""
        label = np.asarray(label)
        out = np.zeros((*label.shape, 3), dtype=np.uint8)
        known = (label >= 0) & (label < self.num_classes)
        out[known] = np.asarray(self.colors, dtype=np.uint8)[label[known]]
        return out

    def to_dict(self) -> dict:
        return {
            "names": self.names,
            "colors": [list(c) for c in self.colors] if self.colors_given else [],
            "ignore_index": self.ignore_index,
            "things": self.things,
            "categories": self.categories,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Taxonomy:
        return cls(
            names=d["names"],
            colors=[tuple(c) for c in d.get("colors") or []],
            ignore_index=d.get("ignore_index", DEFAULT_IGNORE),
            things=d.get("things") or [],
            categories=d.get("categories") or [],
        )

    @classmethod
    def from_file(cls, path: str | Path, ignore_index: int = DEFAULT_IGNORE) -> Taxonomy:
        """Read a `classes` file: one class per line, `name` or `name r g b` (`#` comments).

        Class ids are line order, starting at 0.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "classes file not found")
        names: list[str] = []
        colors: list[Any] = []  # an (r, g, b) tuple or None per class
        for lineno, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").split()
            if len(parts) >= 4 and all(p.isdigit() for p in parts[-3:]):
                rgb = tuple(int(p) for p in parts[-3:])
                if any(v > 255 for v in rgb):
                    raise DataError(path, f"line {lineno}: colour {rgb} is outside 0..255")
                names.append(" ".join(parts[:-3]))
                colors.append(rgb)
            else:
                names.append(" ".join(parts))
                colors.append(None)
        if not names:
            raise DataError(path, "classes file names no class")
        if any(c is None for c in colors):
            if any(c is not None for c in colors):
                raise DataError(path, "give a colour for every class or for none")
            colors = []
        try:
            return cls(names=names, colors=colors, ignore_index=ignore_index)
        except ValueError as e:
            raise DataError(path, str(e)) from None


CAMVID = Taxonomy(
    names=[
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ],
    colors=[
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (60, 40, 222),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ],
    ignore_index=11,
    things=["Car", "Pedestrian", "Bicyclist", "Pole", "SignSymbol"],
)
