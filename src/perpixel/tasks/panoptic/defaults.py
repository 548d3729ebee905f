"""The panoptic recipe's defaults: every key an instance / panoptic recipe may set."""

from __future__ import annotations

import copy
from typing import Any

from perpixel.engine.module import OPTIM_DEFAULTS
from perpixel.engine.trainer import TRAINER_DEFAULTS

DEFAULTS: dict[str, Any] = {
    "task": "panoptic",
    "seed": 0,
    "out": "runs/panoptic",
    "init_from": None,  # a checkpoint whose model weights start this run
    "data": {
        # synthetic | instance_folder | cityscapes | kitti | voc | ade20k | coco | coco_panoptic
        # (the readers of `perpixel.data.formats`)
        "kind": "synthetic",
        "root": None,
        "train_split": "train",
        "val_split": "val",
        "test_split": "test",
        "synthetic": {
            "num_train": 1000,
            "num_val": 100,
            "num_test": 200,
            "height": 128,
            "width": 128,
        },
        "augment": {},  # see perpixel.data.transforms.build_transform
        "batch_size": 8,
        "val_batch_size": 8,
        "num_workers": 2,
    },
    "model": {"name": "panoptic_deeplab"},  # options: the model's default_conf
    "eval": {
        # the numerator of iIoU's instance weights: "data" (mean instance size of each class
        # over the evaluated images) or "cityscapes" (cityscapesScripts' fixed avgClassSize)
        "avg_sizes": "data",
        "ap": True,  # mask AP (COCO protocol); PQ, IoU and iIoU are always computed
    },
    "optim": copy.deepcopy(OPTIM_DEFAULTS),
    "trainer": copy.deepcopy(TRAINER_DEFAULTS),
}
