"""Cityscapes: `root/leftImg8bit/{split}/{city}/*_leftImg8bit.png` with
`root/gtFine/{split}/{city}/*_gtFine_labelIds.png` and `*_gtFine_instanceIds.png`.

instanceIds hold `label id * 1000 + k` for each instance and the label id alone (< 1000) for
stuff and for the group regions of thing classes ("cargroup"), which become crowd (instance 0
on a thing pixel). Semantic maps are the 19 train ids (`CITYSCAPES`, void 255); instances are
renumbered 1..N in order of their instanceIds value, 0 off the thing classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perpixel.data.formats.cityscapes_labels import CITYSCAPES, id_to_train_id
from perpixel.data.formats.common import (
    Reader,
    check_size,
    read_label,
    renumber,
    split_folder,
    thing_table,
)
from perpixel.data.images import read_image
from perpixel.data.panoptic import LABEL_DIVISOR, PanopticSample
from perpixel.errors import DataError

IMAGE_SUFFIX = "_leftImg8bit.png"


def class_of_instance_ids(inst: np.ndarray, divisor: int = LABEL_DIVISOR) -> np.ndarray:
    """The label id of every pixel of an instance-id map (`id // divisor`, or the id itself
    when it is below `divisor`)."""
    return np.where(inst >= divisor, inst // divisor, inst)


def check_instance_classes(
    inst_class: np.ndarray, label_ids: np.ndarray, path: Path, label_path: Path
) -> None:
    """DataError naming the instance file `path` when its classes differ from `label_ids`."""
    bad = inst_class != label_ids
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise DataError(
            path,
            f"instance id map does not match the class map {label_path.name}: "
            f"{int(bad.sum())} pixels differ, first at (row {y}, column {x}): class "
            f"{int(inst_class[y, x])} here, {int(label_ids[y, x])} there",
        )


def to_sample(
    image: np.ndarray, label_ids: np.ndarray, inst: np.ndarray | None, name: str
) -> PanopticSample:
    """Cityscapes label ids (H, W) + instance ids (0 where a pixel has no instance of its
    own; None: no instance map) -> the sample in train ids."""
    semantic = id_to_train_id()[np.clip(label_ids, 0, 255)]
    if inst is None:
        instances = np.zeros(semantic.shape, np.int32)
    else:
        instances = renumber(np.where(thing_table(CITYSCAPES)[semantic], inst, 0))
    return PanopticSample(image, semantic, instances, name)


class Cityscapes(Reader):
    """Cityscapes `split` (train, val, test, train_extra with gtCoarse) under `root`.

    Args:
        annotations: the ground-truth folder, "gtFine" or "gtCoarse".
        require_instances: without instanceIds files, raise DataError (True) or read the
            semantic maps alone with instances all 0 (False: thing pixels then read as crowd).
    """

    taxonomy = CITYSCAPES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        annotations: str = "gtFine",
        require_instances: bool = True,
    ):
        self.root = Path(root)
        images = split_folder(self.root, f"leftImg8bit/{split}", "Cityscapes image")
        gt = split_folder(self.root, f"{annotations}/{split}", "Cityscapes annotation")
        self.files: list[tuple[Path, Path, Path | None]] = []
        self.names = []
        for img in sorted(images.glob(f"*/*{IMAGE_SUFFIX}")):
            stem = img.name[: -len(IMAGE_SUFFIX)]
            base = gt / img.parent.name / f"{stem}_{annotations}"
            labels = Path(f"{base}_labelIds.png")
            inst: Path | None = Path(f"{base}_instanceIds.png")
            if not labels.is_file():
                raise DataError(labels, f"no label ids for {img.name}")
            if inst is not None and not inst.is_file():
                if require_instances:
                    raise DataError(inst, f"no instance ids for {img.name}")
                inst = None
            self.files.append((img, labels, inst))
            self.names.append(stem)
        if not self.files:
            raise DataError(images, f"no *{IMAGE_SUFFIX} files in the city folders")

    def load(self, i: int) -> PanopticSample:
        img_path, label_path, inst_path = self.files[i]
        image = read_image(img_path)
        label_ids = read_label(label_path)
        check_size(image, label_ids, label_path, img_path)
        inst = None
        if inst_path is not None:
            inst = read_label(inst_path)
            check_size(image, inst, inst_path, img_path)
            check_instance_classes(class_of_instance_ids(inst), label_ids, inst_path, label_path)
            inst = np.where(inst >= LABEL_DIVISOR, inst, 0)
        return to_sample(image, label_ids, inst, self.names[i])
