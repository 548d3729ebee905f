"""U-Net with deep supervision for edges: every decoder scale decoded into an edge map.

Each of the `depth` decoder outputs of a `UNetTrunk` (coarsest first) goes through a 1x1
convolution to one edge logit map at its scale, bilinearly upsampled to the input size; a
learned 1x1 convolution fuses them (initialised to their mean). All maps are supervised (see
the edge task's loss).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from perpixel.models.backbones.unet import UNetTrunk
from perpixel.models.base import Model
from perpixel.models.layers import pad_to_multiple, upsample_to


class UNetEdges(Model):
    """Input (B, in_channels, H, W) in [0, 1], any H and W (padded to a multiple of 2**depth
    inside, cropped back). Output {"fused": (B, 1, H, W), "sides": depth x (B, 1, H, W)}
    logits, sides coarsest first."""

    default_conf = {
        "in_channels": 3,
        "depth": 4,
        "base_channels": 32,
        "max_channels": 512,
        "batch_norm": True,
        "upsample": "transpose",
    }
    output = "edges"
    renamed_keys = {"unet.": "backbone."}  # it used to hold a whole UNet

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        self.backbone = UNetTrunk.from_conf(c)
        self.sides = nn.ModuleList(nn.Conv2d(w, 1, 1) for w in self.backbone.out_channels)
        self.fuse = nn.Conv2d(c["depth"], 1, 1)
        nn.init.constant_(self.fuse.weight, 1 / c["depth"])
        nn.init.zeros_(self.fuse.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        xp, (h, w) = pad_to_multiple(x, self.backbone.multiple)
        size = tuple(xp.shape[-2:])
        feats = self.backbone(xp)
        sides = [
            upsample_to(s(f), size)[..., :h, :w] for s, f in zip(self.sides, feats, strict=True)
        ]
        return {"fused": self.fuse(torch.cat(sides, 1)), "sides": sides}
