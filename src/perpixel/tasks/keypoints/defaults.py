"""The keypoint recipe's defaults: every key an interest-point recipe may set."""

from __future__ import annotations

import copy
from typing import Any

from perpixel.engine.module import OPTIM_DEFAULTS
from perpixel.engine.trainer import TRAINER_DEFAULTS
from perpixel.tasks.keypoints.homographies import HOMOGRAPHY_AUGMENTATION
from perpixel.tasks.keypoints.photometric import PHOTOMETRIC_DEFAULTS

DETECT_DEFAULTS: dict[str, Any] = {
    "radius": 4,  # non-maximum suppression radius, pixels (square window)
    "threshold": 0.015,  # minimum point probability
    "top_k": None,  # keep the k best points per image (None: all)
    "border": 4,  # drop points this close to the image edge, pixels
}

DEFAULTS: dict[str, Any] = {
    "task": "keypoints",
    "seed": 0,
    "out": "runs/keypoints",
    "init_from": None,  # a keypoint checkpoint whose matching weights start this run
    "data": {
        # shapes: synthetic shapes with exact corners (MagicPoint);
        # folder: images of `root` with the points `perpixel keypoints adapt` wrote in `labels`
        "kind": "shapes",
        "root": None,
        "labels": None,
        "shape": [120, 160],  # (H, W) the images are drawn at or resized and cropped to
        "num_train": 20000,  # shapes: drawn on the fly, a new image for every index
        "num_val": 200,
        "num_test": 500,
        "families": None,  # shapes: a list of `shapes.FAMILIES` (None: all)
        "val_fraction": 0.05,  # folder: the part held out for validation (seeded)
        # (image, warped image) pairs with the warp; needed to train descriptors
        "pairs": False,
        "photometric": copy.deepcopy(PHOTOMETRIC_DEFAULTS),
        "photometric_train": True,  # photometric augmentation of training images
        "homographic_train": True,  # a random homography on training images (and points)
        # the random homographies of training (and of the pairs): the reference's augmentation
        "homography": copy.deepcopy(HOMOGRAPHY_AUGMENTATION),
        "batch_size": 32,
        "val_batch_size": 32,
        "num_workers": 2,
    },
    "model": {"name": "magicpoint"},  # options: the model's default_conf (perpixel.models)
    "loss": {
        "descriptor_weight": 1e-4,  # lambda of the paper: detector + lambda * descriptor
        "pos_margin": 1.0,
        "neg_margin": 0.2,
        "lambda_d": 250.0,  # weight of the (rare) positive pairs
    },
    "detect": copy.deepcopy(DETECT_DEFAULTS),
    "val": {
        "distance": 4.0,
        "threshold": 0.001,
    },  # AP: correct within `distance` px (the reference)
    "optim": {**copy.deepcopy(OPTIM_DEFAULTS), "name": "adam", "weight_decay": 0.0},
    "trainer": copy.deepcopy(TRAINER_DEFAULTS),
}
