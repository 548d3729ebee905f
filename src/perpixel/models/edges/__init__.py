"""Edge models: (B, 3, H, W) in [0, 1] -> {"fused": (B, 1, H, W), "sides": [...]} logits."""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.edges.hed import HED
from perpixel.models.edges.unet_edges import UNetEdges


class FusedLogits(nn.Module):
    """Wrap an edge model to return its fused (B, 1, H, W) logits only (ONNX export)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["fused"]


__all__ = ["HED", "FusedLogits", "UNetEdges"]
