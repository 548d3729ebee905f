"""The segmentation recipe's defaults: every key a segmentation recipe may set."""

from __future__ import annotations

import copy
from typing import Any

from perpixel.engine.module import OPTIM_DEFAULTS
from perpixel.engine.trainer import TRAINER_DEFAULTS

# the dense CRF's parameters (`perpixel.tasks.segmentation.crf`, `--crf`)
# DeepLab v1 (Chen et al., ICLR 2015, arXiv:1412.7062, sec. 4): w2 = 3 and theta_gamma = 3 are
# densecrf's defaults, kept fixed; w1, theta_alpha, theta_beta were cross-validated on 100 VOC
# val images, giving DeepLab-LargeFOV's bi_w = 4, bi_xy_std = 121, bi_rgb_std = 5 (the values
# pydensecrf users copy, often noted "121, 140 / 5, 5 / 4, 5" for the two released models), and
# 10 mean-field iterations. DeepLab v2 (VGG16) instead uses bi_w 4, bi_xy_std 65, bi_rgb_std 3,
# pos_w 2, pos_xy_std 2; widely used pydensecrf examples use w1 = 10 (or 5), 80, 13 and 5 steps.
CRF_DEFAULTS: dict[str, float] = {
    "iterations": 10,  # mean-field steps
    "bilateral_weight": 4.0,  # w1 (bi_w)
    "theta_alpha": 121.0,  # bilateral position std, pixels (bi_xy_std)
    "theta_beta": 5.0,  # bilateral colour std, 0-255 intensity units (bi_rgb_std)
    "gaussian_weight": 3.0,  # w2 (pos_w)
    "theta_gamma": 3.0,  # smoothness position std, pixels (pos_xy_std)
}

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
        "aux": 0.4,  # weight of auxiliary heads' losses (PSPNet's deep supervision)
    },
    "optim": copy.deepcopy(OPTIM_DEFAULTS),
    "crf": dict(CRF_DEFAULTS),  # used by `perpixel evaluate/predict --crf`
    "trainer": copy.deepcopy(TRAINER_DEFAULTS),
}
