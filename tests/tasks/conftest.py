"""A small trained checkpoint shared by the task, CLI, export and DDP tests."""

from __future__ import annotations

import pytest

from perpixel.tasks.config import load_config
from perpixel.tasks.train import train

TINY = {
    "seed": 0,
    "data": {
        "kind": "synthetic",
        "synthetic": {"num_train": 96, "num_val": 24, "num_test": 24, "height": 48, "width": 48},
        "batch_size": 8,
        "val_batch_size": 8,
        "num_workers": 0,
    },
    "model": {"name": "unet", "base_channels": 8, "depth": 3},
    "optim": {"lr": 0.003},
    "trainer": {
        "max_epochs": 2,
        "enable_progress_bar": False,
        "precision": "32-true",
        "accelerator": "cpu",
    },
}


def tiny_config(out, **over) -> dict:
    from perpixel.tasks.config import merge

    return merge(load_config(None, TINY), {"out": str(out), **over})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """Train the tiny U-Net once per test session; returns train()'s result and the config."""
    out = tmp_path_factory.mktemp("tiny_run")
    conf = tiny_config(out)
    result = train(conf)
    return {"conf": conf, "out": out, **result}
