"""KITTI semantic/instance segmentation 2015 (`data_semantics`): `root/training/image_2/*.png`,
`root/training/semantic/*.png` (8-bit Cityscapes label ids) and `root/training/instance/*.png`
(16-bit: label id * 256 + instance, instance 1, 2, ... per class, 0 = none).

Read as Cityscapes (`CITYSCAPES` train ids, void 255): thing pixels with instance 0 are crowd.
Only `training` has ground truth (200 images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perpixel.data.formats.cityscapes import check_instance_classes, to_sample
from perpixel.data.formats.cityscapes_labels import CITYSCAPES
from perpixel.data.formats.common import Reader, check_size, read_label, split_folder
from perpixel.data.images import read_image
from perpixel.data.panoptic import PanopticSample
from perpixel.errors import DataError

DIVISOR = 256
SPLITS = {"train": "training", "training": "training", "test": "testing", "testing": "testing"}


class KITTI(Reader):
    """KITTI semantics `split` ("training"; "train" also names it) under `root`."""

    taxonomy = CITYSCAPES

    def __init__(self, root: str | Path, split: str = "training"):
        self.root = Path(root)
        base = self.root / SPLITS.get(split, split)
        images = split_folder(base, "image_2", "KITTI image")
        semantic = split_folder(base, "semantic", "KITTI semantic label")
        instance = split_folder(base, "instance", "KITTI instance label")
        self.files: list[tuple[Path, Path, Path]] = []
        self.names = []
        for img in sorted(images.glob("*.png")):
            sem, inst = semantic / img.name, instance / img.name
            for p in (sem, inst):
                if not p.is_file():
                    raise DataError(p, f"no {p.parent.name} labels for {img.name}")
            self.files.append((img, sem, inst))
            self.names.append(img.stem)
        if not self.files:
            raise DataError(images, "no .png images")

    def load(self, i: int) -> PanopticSample:
        img_path, sem_path, inst_path = self.files[i]
        image = read_image(img_path)
        label_ids = read_label(sem_path)
        inst = read_label(inst_path)
        check_size(image, label_ids, sem_path, img_path)
        check_size(image, inst, inst_path, img_path)
        check_instance_classes(inst // DIVISOR, label_ids, inst_path, sem_path)
        return to_sample(image, label_ids, np.where(inst % DIVISOR > 0, inst, 0), self.names[i])
