"""Checkpoints as plain data: read with `torch.load(weights_only=True)`, so a file someone
sent you cannot run code when opened; written atomically.

A checkpoint is a Lightning checkpoint dict: "state_dict", "hyper_parameters" (the task
module's constructor arguments: the recipe, with its `task:`, and task data such as the
taxonomy), and Lightning's training state (epoch, optimiser, loops) for `--resume`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from perpixel.errors import PerpixelError
from perpixel.io import atomic_path, load_plain


def read_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """The checkpoint dict at `path`, unpickled as plain data only; PerpixelError naming the
    file when it is missing, carries code, or is not a perpixel checkpoint."""
    ckpt = load_plain(path, "a perpixel checkpoint", "checkpoint not found", map_location)
    if not isinstance(ckpt, dict) or not {"state_dict", "hyper_parameters"} <= set(ckpt):
        raise PerpixelError(f"{path}: not a perpixel checkpoint (no state_dict/hyper_parameters)")
    return ckpt


def checkpoint_task(ckpt: dict) -> str:
    """The task a checkpoint belongs to: its recipe's `task:`."""
    config = ckpt["hyper_parameters"].get("config") or {}
    return str(config.get("task") or "segmentation")


def save_checkpoint(path: str | Path, state_dict: dict, hyper_parameters: dict, **extra) -> Path:
    """Write a checkpoint that `read_checkpoint` and the task modules load, atomically;
    `extra` keys are stored beside (e.g. where the weights came from)."""
    import lightning as L

    ckpt = {
        "state_dict": state_dict,
        "hyper_parameters": hyper_parameters,
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)
