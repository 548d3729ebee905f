"""Batching samples of different sizes (portrait and landscape photos in one batch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def pad_stack(tensors: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    """Stack (..., H_i, W_i) tensors into (B, ..., H, W), H and W the largest; the smaller
    ones are padded with `value` at the bottom and right (pad labels with the value that the
    loss and metrics ignore, so padding never counts)."""
    h = max(t.shape[-2] for t in tensors)
    w = max(t.shape[-1] for t in tensors)
    return torch.stack(
        [F.pad(t, (0, w - t.shape[-1], 0, h - t.shape[-2]), value=value) for t in tensors]
    )
