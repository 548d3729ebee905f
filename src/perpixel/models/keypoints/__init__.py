"""Interest-point models: (B, 1, H, W) gray (or RGB) in [0, 1], H and W multiples of 8 ->
{"logits": (B, 65, H/8, W/8), "descriptors": (B, D, H/8, W/8)} (see `SuperPoint`)."""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.keypoints.superpoint import (
    MagicPoint,
    SuperPoint,
    sample_descriptors,
    to_gray,
)


class KeypointOutputs(nn.Module):
    """Wrap a keypoint model to return a tuple (logits, descriptors), or (logits,) without a
    descriptor head, for ONNX export (`output_names` and `size_multiple` tell
    `perpixel.engine.export.export_onnx` what they are and which sizes it takes)."""

    size_multiple = 8

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        has = getattr(model, "conf", {}).get("descriptors", False)
        self.output_names = ("logits", "descriptors") if has else ("logits",)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return (out["logits"], out["descriptors"]) if "descriptors" in out else (out["logits"],)


__all__ = ["KeypointOutputs", "MagicPoint", "SuperPoint", "sample_descriptors", "to_gray"]
