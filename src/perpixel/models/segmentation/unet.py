"""U-Net (Ronneberger et al. 2015) for per-pixel classification, any input size."""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.backbones.unet import UNetTrunk
from perpixel.models.base import Model
from perpixel.models.layers import pad_to_multiple


class UNet(Model):
    """`UNetTrunk` + (dropout and) a 1x1 convolution to class logits.

    Input (B, in_channels, H, W) RGB in [0, 1], any H and W: the input is padded to a
    multiple of 2**depth and the output cropped back. Output (B, num_classes, H, W) logits.
    """

    default_conf = {
        "in_channels": 3,
        "num_classes": 2,
        "depth": 4,  # number of 2x downsamplings
        "base_channels": 32,  # width of the first stage; doubles at every stage
        "max_channels": 512,
        "batch_norm": True,
        "upsample": "transpose",  # or "bilinear"
        "dropout": 0.0,  # before the classifier
    }
    output = "logits"
    renamed_keys = {"stem.": "backbone.stem.", "down.": "backbone.down.", "up.": "backbone.up."}

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        self.backbone = UNetTrunk.from_conf(c)
        self.dropout = nn.Dropout2d(c["dropout"]) if c["dropout"] > 0 else nn.Identity()
        self.head = nn.Conv2d(self.backbone.widths[0], c["num_classes"], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, self.backbone.multiple)
        y = self.head(self.dropout(self.backbone(x)[-1]))
        return y[..., :h, :w]
