"""The Cityscapes label table (cityscapesScripts' `helpers/labels.py`): label ids as stored in
`*_labelIds.png`, the 19 evaluated train ids, categories, which classes have instances."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perpixel.data.taxonomy import Taxonomy


class Label(NamedTuple):
    name: str
    id: int  # the value in *_labelIds.png (and id // 1000 in *_instanceIds.png)
    train_id: int  # 0..18 for the evaluated classes, 255 for the rest
    category: str
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: list[Label] = [
    Label("unlabeled", 0, 255, "void", False, True, (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", False, True, (0, 0, 0)),
    Label("rectification border", 2, 255, "void", False, True, (0, 0, 0)),
    Label("out of roi", 3, 255, "void", False, True, (0, 0, 0)),
    Label("static", 4, 255, "void", False, True, (0, 0, 0)),
    Label("dynamic", 5, 255, "void", False, True, (111, 74, 0)),
    Label("ground", 6, 255, "void", False, True, (81, 0, 81)),
    Label("road", 7, 0, "flat", False, False, (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", False, False, (244, 35, 232)),
    Label("parking", 9, 255, "flat", False, True, (250, 170, 160)),
    Label("rail track", 10, 255, "flat", False, True, (230, 150, 140)),
    Label("building", 11, 2, "construction", False, False, (70, 70, 70)),
    Label("wall", 12, 3, "construction", False, False, (102, 102, 156)),
    Label("fence", 13, 4, "construction", False, False, (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", False, True, (180, 165, 180)),
    Label("bridge", 15, 255, "construction", False, True, (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", False, True, (150, 120, 90)),
    Label("pole", 17, 5, "object", False, False, (153, 153, 153)),
    Label("polegroup", 18, 255, "object", False, True, (153, 153, 153)),
    Label("traffic light", 19, 6, "object", False, False, (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", False, False, (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", False, False, (107, 142, 35)),
    Label("terrain", 22, 9, "nature", False, False, (152, 251, 152)),
    Label("sky", 23, 10, "sky", False, False, (70, 130, 180)),
    Label("person", 24, 11, "human", True, False, (220, 20, 60)),
    Label("rider", 25, 12, "human", True, False, (255, 0, 0)),
    Label("car", 26, 13, "vehicle", True, False, (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", True, False, (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", True, False, (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", True, True, (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", True, True, (0, 0, 110)),
    Label("train", 31, 16, "vehicle", True, False, (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", True, False, (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", True, False, (119, 11, 32)),
]
# fmt: on

EVALUATED = sorted((lb for lb in LABELS if lb.train_id != 255), key=lambda lb: lb.train_id)

# The 19 evaluated classes, ids = train ids; ignore 255.
CITYSCAPES = Taxonomy(
    names=[lb.name for lb in EVALUATED],
    colors=[lb.color for lb in EVALUATED],
    things=[lb.name for lb in EVALUATED if lb.has_instances],
    categories=[lb.category for lb in EVALUATED],
)

# cityscapesScripts' `avgClassSize`: the mean instance size (pixels, fine training set) of each
# instance class, the weights' numerator in its iIoU (evalPixelLevelSemanticLabeling.py)
AVG_CLASS_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}


def id_to_train_id() -> np.ndarray:
    """(256,) uint8 lookup table: label id -> train id (255 for ids not evaluated)."""
    lut = np.full(256, 255, np.uint8)
    for lb in LABELS:
        lut[lb.id] = lb.train_id
    return lut


def train_id_to_id() -> np.ndarray:
    """(256,) uint8 lookup table: train id -> label id (0, "unlabeled", for 255)."""
    lut = np.zeros(256, np.uint8)
    for lb in EVALUATED:
        lut[lb.train_id] = lb.id
    return lut
