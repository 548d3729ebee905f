"""The edge recipe's defaults: every key an edge-detection recipe may set."""

from __future__ import annotations

import copy
from typing import Any

from perpixel.engine.module import OPTIM_DEFAULTS
from perpixel.engine.trainer import TRAINER_DEFAULTS

DEFAULTS: dict[str, Any] = {
    "task": "edges",
    "seed": 0,
    "out": "runs/edges",
    "init_from": None,  # an edge checkpoint whose model weights start this run
    "init_vgg16": None,  # HED only: a torchvision VGG16 state dict (.pth) for the backbone
    "data": {
        "kind": "synthetic",  # synthetic | bsds500
        "root": None,  # bsds500: images/ + groundTruth/ (or the BSR download)
        "train_split": None,  # None: "train+val" for bsds500 (as the literature), else "train"
        "val_split": "val",
        "test_split": "test",
        "val_limit": None,  # validate on the first N images only (full size, so slow)
        "cache": True,  # bsds500: load all images and annotations once, up front
        "synthetic": {"num_train": 500, "num_val": 50, "num_test": 50, "height": 64, "width": 64},
        "augment": {},  # see perpixel.data.transforms.build_transform
        "batch_size": 8,
        "val_batch_size": 1,  # mixed sizes are padded (not scored) when > 1
        "num_workers": 2,
    },
    "model": {"name": "unet_edges"},  # options: the model's default_conf (perpixel.models)
    "loss": {
        "balance": "dataset",  # dataset (textbook beta) | image (HED) | none
        "beta": None,  # None: edge_fraction of the training set
        "consensus": None,  # k annotators (int) or a fraction (float); None: soft targets
        "side_weights": 1.0,
        "fused_weight": 1.0,
        "pixel_reduction": "mean",  # or "sum" (HED's Caffe loss; scale the lr down)
    },
    "optim": copy.deepcopy(OPTIM_DEFAULTS),
    "val": {"thresholds": 19, "tolerance": 0.0075},  # approximate F (see metrics.approx_f_counts)
    "trainer": copy.deepcopy(TRAINER_DEFAULTS),
}
