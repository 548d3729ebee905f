"""The generic instance layout: `root[/split]/images/*`, `root[/split]/masks/*.png` (class
ids), `root[/split]/instances/*.png` (instance ids, 8- or 16-bit; 0 = none) with matching
file stems, and a `classes.txt` in `root` (or `root/split`).

`classes.txt`: one class per line in class-id order (`#` starts a comment), `name` or
`name r g b`, followed by the word `thing` for a countable class:

    road
    sky 70 130 180
    car thing
    person 220 20 60 thing

A name may hold spaces; a line of the one word `thing` is a class named "thing". Give a
colour for every class or for none. When colours are given, masks may also be RGB images in
those colours. The mask value `ignore_index` (255) is void.

Instance ids are unique within an image and lie only on thing-class pixels, each on one
class; a thing pixel with instance 0 is a crowd region. The `instances/` folder may be left
out when no class is a thing. Instances are renumbered 1..N in ascending id order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perpixel.data.formats.common import (
    Reader,
    check_classes,
    check_size,
    read_label,
    renumber,
    stem_map,
    thing_table,
)
from perpixel.data.images import IMAGE_SUFFIXES, list_images, read_image
from perpixel.data.panoptic import PanopticSample
from perpixel.data.taxonomy import DEFAULT_IGNORE, Taxonomy
from perpixel.errors import DataError

THING = "thing"


def read_classes(path: Path, ignore_index: int = DEFAULT_IGNORE) -> Taxonomy:
    """A `classes.txt` with thing markers (see the module docstring) -> Taxonomy."""
    if not path.is_file():
        raise DataError(path, "classes file not found")
    names: list[str] = []
    colors: list[tuple[int, int, int] | None] = []
    things: list[str] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        parts = raw.split("#", 1)[0].replace(",", " ").split()
        if not parts:
            continue
        thing = len(parts) > 1 and parts[-1].lower() == THING
        if thing:
            parts = parts[:-1]
        rgb = None
        if len(parts) >= 4 and all(p.isdigit() for p in parts[-3:]):
            rgb = (int(parts[-3]), int(parts[-2]), int(parts[-1]))
            if max(rgb) > 255:
                raise DataError(path, f"line {lineno}: colour {rgb} is outside 0..255")
            parts = parts[:-3]
        name = " ".join(parts)
        if name in names:
            raise DataError(path, f"line {lineno}: class {name!r} named twice")
        names.append(name)
        colors.append(rgb)
        if thing:
            things.append(name)
    if not names:
        raise DataError(path, "classes file names no class")
    if any(c is None for c in colors) and any(c is not None for c in colors):
        raise DataError(path, "give a colour for every class or for none")
    try:
        return Taxonomy(
            names=names,
            colors=[c for c in colors if c is not None],
            ignore_index=ignore_index,
            things=things,
        )
    except ValueError as e:
        raise DataError(path, str(e)) from None


def check_instances(semantic: np.ndarray, inst: np.ndarray, tax: Taxonomy, path: Path) -> None:
    """DataError naming `path` when an instance id lies off the thing classes or spans two
    classes."""
    on = inst > 0
    off = on & ~thing_table(tax)[semantic]
    if off.any():
        y, x = np.argwhere(off)[0]
        c = int(semantic[y, x])
        what = "void" if c == tax.ignore_index else f"stuff class {c} ({tax.names[c]})"
        raise DataError(
            path,
            f"instance {int(inst[y, x])} lies on {what} pixels (first at row {y}, column "
            f"{x}); instance ids belong on the thing classes only (marked 'thing' in "
            "classes.txt)",
        )
    pairs = np.unique(np.stack([inst[on], semantic[on].astype(np.int64)]), axis=1)
    ids, counts = np.unique(pairs[0], return_counts=True)
    if (counts > 1).any():
        k = int(ids[counts > 1][0])
        classes = [tax.names[c] for c in pairs[1][pairs[0] == k]]
        raise DataError(path, f"instance {k} spans two or more classes: {classes}")


class InstanceFolder(Reader):
    """The generic layout under `root` (`split`: a subfolder, or None for `root` itself)."""

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        ignore_index: int = DEFAULT_IGNORE,
        taxonomy: Taxonomy | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "data folder not found")
        base = self.root / split if split else self.root
        if taxonomy is None:
            found = [p for p in (self.root / "classes.txt", base / "classes.txt") if p.is_file()]
            if not found:
                raise DataError(self.root, "no classes.txt naming the classes (one per line)")
            taxonomy = read_classes(found[0], ignore_index)
        self.taxonomy = taxonomy
        images = list_images(base / "images")
        masks = self._stems(base / "masks", required=True)
        inst_dir = base / "instances"
        insts = self._stems(inst_dir, required=bool(taxonomy.things))
        assert masks is not None
        self.files: list[tuple[Path, Path, Path | None]] = []
        for img in images:
            if img.stem not in masks:
                raise DataError(base / "masks", f"no mask for {img.name}")
            if insts is not None and img.stem not in insts:
                raise DataError(inst_dir, f"no instance map for {img.name}")
            self.files.append((img, masks[img.stem], None if insts is None else insts[img.stem]))
        self.names = [img.stem for img in images]

    @staticmethod
    def _stems(folder: Path, required: bool) -> dict[str, Path] | None:
        if not folder.is_dir():
            if required:
                raise DataError(folder, "folder not found (it must sit beside images/)")
            return None
        return {s: p for s, p in stem_map(folder).items() if p.suffix.lower() in IMAGE_SUFFIXES}

    def _semantic(self, path: Path) -> np.ndarray:
        label = read_label(path, allow_rgb=self.taxonomy.colors_given)
        if label.ndim == 2:
            return label
        # RGB mask in the classes' colours
        rgb = label.astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        table = {(r << 16) | (g << 8) | b: k for k, (r, g, b) in enumerate(self.taxonomy.colors)}
        values, inverse = np.unique(code, return_inverse=True)
        unknown = [int(v) for v in values if int(v) not in table]
        if unknown:
            shown = [(v >> 16, (v >> 8) & 255, v & 255) for v in unknown[:3]]
            raise DataError(path, f"colours {shown} are not class colours of classes.txt")
        ids = np.array([table[int(v)] for v in values], np.int64)
        return ids[inverse.reshape(code.shape)]

    def load(self, i: int) -> PanopticSample:
        img_path, mask_path, inst_path = self.files[i]
        image = read_image(img_path)
        semantic = self._semantic(mask_path)
        check_size(image, semantic, mask_path, img_path)
        check_classes(semantic, self.taxonomy, mask_path)
        if inst_path is None:
            instances = np.zeros(semantic.shape, np.int32)
        else:
            inst = read_label(inst_path)
            check_size(image, inst, inst_path, img_path)
            check_instances(semantic, inst, self.taxonomy, inst_path)
            instances = renumber(inst)
        return PanopticSample(image, semantic.astype(np.uint8), instances, self.names[i])
