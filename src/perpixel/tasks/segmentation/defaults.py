"""The segmentation recipe's defaults: every key a segmentation recipe may set."""

from __future__ import annotations

import copy
from typing import Any

from perpixel.engine.module import OPTIM_DEFAULTS
from perpixel.engine.trainer import TRAINER_DEFAULTS

DEFAULTS: dict[str, Any] = {
    "task": "segmentation",
    "seed": 0,
    "out": "runs/experiment",
    "init_from": None,  # a checkpoint whose model weights start this run (fine-tuning stages)
    "data": {
        "kind": "synthetic",  # synthetic | folder | camvid
        "root": None,  # folder / camvid root
        "train_split": "train",
        "val_split": "val",
        "test_split": "test",
        "ignore_index": 255,  # folder datasets only; CamVid uses 11, synthetic has none
        # a folder without splits (images/ + masks/ directly under root) is split at random:
        # {"val": 0.15, "test": 0.25, "seed": 0} (fractions of the images); None: no split
        "split": None,
        "synthetic": {
            "num_train": 2000,
            "num_val": 200,
            "num_test": 200,
            "height": 128,
            "width": 128,
        },
        "augment": {},  # see perpixel.data.transforms.build_transform
        "batch_size": 8,
        "val_batch_size": 4,
        "num_workers": 2,
    },
    "model": {"name": "unet"},  # options: the model's default_conf (perpixel.models)
    "loss": {
        "ce": 1.0,
        "dice": 0.0,
        # None | median_frequency | sqrt_median_frequency | inverse_frequency | [w...]
        "class_weights": None,
    },
    "optim": copy.deepcopy(OPTIM_DEFAULTS),
    "trainer": copy.deepcopy(TRAINER_DEFAULTS),
}
