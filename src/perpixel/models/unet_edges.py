"""U-Net with deep supervision for edges: every decoder scale decoded into an edge map.

Each of the `depth` decoder outputs (coarsest first) goes through a 1x1 convolution to one
edge logit map at its scale, bilinearly upsampled to the input size; a learned 1x1
convolution fuses them (initialised to their mean). All maps are supervised (see
`perpixel.losses.edges.EdgeLoss`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.hed import upsample_to
from perpixel.models.unet import UNet


class UNetEdges(nn.Module):
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

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"UNetEdges: unknown options {sorted(unknown)}")
        self.conf = c = {**self.default_conf, **conf}
        self.unet = UNet(**c, num_classes=1)
        self.unet.head = None  # replaced by the side outputs
        widths = self.unet.widths
        self.sides = nn.ModuleList(nn.Conv2d(widths[i], 1, 1) for i in reversed(range(c["depth"])))
        self.fuse = nn.Conv2d(c["depth"], 1, 1)
        nn.init.constant_(self.fuse.weight, 1 / c["depth"])
        nn.init.zeros_(self.fuse.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        h, w = x.shape[-2:]
        m = self.unet.multiple
        ph, pw = (m - h % m) % m, (m - w % m) % m
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
        size = tuple(xp.shape[-2:])
        feats = self.unet.decode(xp)
        sides = [
            upsample_to(s(f), size)[..., :h, :w] for s, f in zip(self.sides, feats, strict=True)
        ]
        return {"fused": self.fuse(torch.cat(sides, 1)), "sides": sides}
