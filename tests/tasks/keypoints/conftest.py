"""A seconds-long keypoint training run shared by the task's tests."""

from __future__ import annotations

import pytest

TINY_KP = {
    "task": "keypoints",
    "seed": 0,
    "data": {
        "kind": "shapes",
        "shape": [48, 64],
        "num_train": 64,
        "num_val": 16,
        "num_test": 16,
        "pairs": True,
        "batch_size": 16,
        "val_batch_size": 16,
        "num_workers": 0,
    },
    "model": {
        "name": "superpoint",
        "channels": [8, 8, 16, 16],
        "head_channels": 16,
        "descriptor_dim": 16,
    },
    "trainer": {
        "max_epochs": 1,
        "enable_progress_bar": False,
        "precision": "32-true",
        "accelerator": "cpu",
    },
}


def kp_config(out, **over) -> dict:
    from perpixel.config import merge
    from perpixel.tasks import load_recipe

    return merge(load_recipe(None, TINY_KP), {"out": str(out), **over})


@pytest.fixture(scope="session")
def tiny_superpoint(tmp_path_factory) -> str:
    """The best checkpoint of a 1-epoch SuperPoint run on synthetic shape pairs."""
    from perpixel.tasks.keypoints.train import train

    out = tmp_path_factory.mktemp("tiny_superpoint")
    return train(kp_config(out))["best"]
