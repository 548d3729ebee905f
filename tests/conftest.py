"""Shared test settings: the CI machine has 2 cores, so tests run torch single-threaded."""

from pathlib import Path

import pytest
import torch

# Real data beside the repository (see ../shared/data/README.md); tests using it skip without it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BSDS_ROOT = SHARED_DATA / "bsds500"


@pytest.fixture
def bsds_root() -> Path:
    if not (BSDS_ROOT / "groundTruth").is_dir():
        pytest.skip(f"BSDS500 not found at {BSDS_ROOT}")
    return BSDS_ROOT


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# A small trained checkpoint shared by the task, CLI, export and DDP tests.
TINY = {
    "seed": 0,
    "data": {
        "kind": "synthetic",
        "synthetic": {"num_train": 320, "num_val": 32, "num_test": 32, "height": 64, "width": 64},
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


def _tiny_config(out, **over) -> dict:
    from perpixel.config import merge
    from perpixel.tasks import load_recipe

    return merge(load_recipe(None, TINY), {"out": str(out), **over})


@pytest.fixture(scope="session")
def tiny_config():
    """`tiny_config(out, **overrides)` -> a full config for a seconds-long synthetic run."""
    return _tiny_config


@pytest.fixture(scope="session")
def tiny_yaml(tmp_path_factory):
    """The tiny recipe as a YAML file, for CLI subprocess tests."""
    import yaml

    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """Train the tiny U-Net once per test session; returns train()'s result and the config."""
    from perpixel.tasks.segmentation.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    conf = _tiny_config(out)
    torch.set_num_threads(1)
    return {"conf": conf, "out": out, **train(conf)}
