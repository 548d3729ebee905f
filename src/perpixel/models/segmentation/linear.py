"""The per-pixel linear classifier: multi-class logistic regression on pixel features."""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.base import Model


class PixelLinear(Model):
    """A 1x1 convolution from the pixel's colour to class logits: no spatial context.

    Input (B, in_channels, H, W) in [0, 1]; output (B, num_classes, H, W) logits.
    """

    default_conf = {"in_channels": 3, "num_classes": 2}
    output = "logits"

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        self.classifier = nn.Conv2d(c["in_channels"], c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)
