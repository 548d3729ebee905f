"""ADE20K scene parsing (the MIT SceneParsing benchmark, `ADEChallengeData2016`):
`root/images/{training,validation}/*.jpg` and `root/annotations/{training,validation}/*.png`.

Annotations hold 0 = "other" (not evaluated: void, 255 here) and 1..150 the classes, read as
0..149. Semantic only: instances all 0, no thing classes. Class names: the first name of each
class in the benchmark's `objectInfo150` list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perpixel.data.formats.common import (
    Reader,
    check_size,
    read_label,
    split_folder,
    stem_map,
)
from perpixel.data.images import read_image
from perpixel.data.panoptic import PanopticSample
from perpixel.data.taxonomy import Taxonomy
from perpixel.errors import DataError

ADE20K_NAMES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
]  # fmt: skip

ADE20K_150 = Taxonomy(names=ADE20K_NAMES)
SPLITS = {"train": "training", "val": "validation"}


class ADE20K(Reader):
    """ADE20K `split` ("training" / "validation"; "train" / "val" also name them)."""

    taxonomy = ADE20K_150

    def __init__(self, root: str | Path, split: str = "training"):
        self.root = Path(root)
        split = SPLITS.get(split, split)
        images = split_folder(self.root, f"images/{split}", "ADE20K image")
        labels = stem_map(split_folder(self.root, f"annotations/{split}", "ADE20K annotation"))
        self.files: list[tuple[Path, Path]] = []
        for img in sorted(images.glob("*.jpg")):
            if img.stem not in labels:
                raise DataError(self.root / "annotations" / split, f"no annotation for {img.name}")
            self.files.append((img, labels[img.stem]))
        if not self.files:
            raise DataError(images, "no .jpg images")
        self.names = [img.stem for img, _ in self.files]

    def load(self, i: int) -> PanopticSample:
        img_path, label_path = self.files[i]
        image = read_image(img_path)
        label = read_label(label_path)
        check_size(image, label, label_path, img_path)
        if (label > ADE20K_150.num_classes).any():
            values = np.unique(label[label > ADE20K_150.num_classes])[:5].tolist()
            raise DataError(label_path, f"label values {values} are past the 150 classes")
        semantic = np.where(label == 0, 255, label - 1)
        return PanopticSample(
            image, semantic.astype(np.uint8), np.zeros(label.shape, np.int32), self.names[i]
        )
