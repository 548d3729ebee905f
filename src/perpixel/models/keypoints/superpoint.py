"""SuperPoint (DeTone, Malisiewicz & Rabinovich, CVPRW 2018) and its detector alone, MagicPoint.

Layer for layer `SuperPointNet` of magicleap/SuperPointPretrainedNetwork (demo_superpoint.py):
a shared VGG-style encoder to 1/8 resolution (`conv1a` .. `conv4b`), a detector head (`convPa`
3x3 + ReLU, `convPb` 1x1 to 65 channels) and a descriptor head (`convDa` 3x3 + ReLU, `convDb`
1x1 to `descriptor_dim`, then L2-normalised). The layers are the model's own attributes, so the
released state dict loads unchanged. `batch_norm: True` adds batch norm after every 3x3
convolution (after its ReLU), as rpautrat/SuperPoint trains it: `bn1a` .. `bn4b`, `bnPa`, `bnDa`;
unlike rpautrat's, the 1x1 output layers keep their bias and get no batch norm, so the logits
can learn the dustbin's prior (97% of cells) at once instead of creeping out of unit variance.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.backbones.vgg_cells import add_vgg_cells, conv_relu_bn, vgg_cells
from perpixel.models.base import Model

CELL = 8  # pixels per cell side: the encoder pools three times
GRAY = (0.299, 0.587, 0.114)  # RGB -> gray weights
CELL_CENTRE = (CELL - 1) / 2  # the centre of cell (i, j) is pixel (8j + 3.5, 8i + 3.5)
# Most cells hold no point (about 97% of synthetic-shape cells): the dustbin's bias starts at
# the log-odds of that prior, p(dustbin) = 0.97 (as RetinaNet's prior initialisation); from
# uniform logits Adam would need thousands of steps of size lr to walk the bias there.
DUSTBIN_PRIOR = 0.97


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> (..., 1, H, W) 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as
    OpenCV's gray)."""
    w = torch.tensor(GRAY, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(-3, keepdim=True)


class SuperPoint(Model):
    """Interest points and descriptors on 8x8 cells.

    Input (B, in_channels, H, W) in [0, 1], H and W multiples of 8; with in_channels 1 an RGB
    (B, 3, H, W) image is converted to gray first. Output {"logits": (B, 65, H/8, W/8)
    detector logits (channel k < 64: the point is at row k // 8, col k % 8 of the cell; 64:
    no point), "descriptors": (B, descriptor_dim, H/8, W/8) L2-normalised along dim 1}; no
    "descriptors" when `descriptors` is False.
    """

    default_conf = {
        "in_channels": 1,
        "channels": [64, 64, 128, 128],  # the encoder's four stages (c1..c4 of the release)
        "head_channels": 256,  # c5: the 3x3 convolution of each head
        "descriptor_dim": 256,
        "descriptors": True,  # the descriptor head (False: MagicPoint)
        "batch_norm": False,  # True: rpautrat/SuperPoint's training variant
    }
    output = "keypoints"

    def __init__(self, **conf):
        super().__init__(**conf)
        c = self.conf
        if len(c["channels"]) != 4:
            raise ValueError(f"channels needs 4 entries (1/8 resolution), got {c['channels']}")
        bn = bool(c["batch_norm"])
        width = add_vgg_cells(self, c["in_channels"], c["channels"], bn)
        heads = [("P", CELL * CELL + 1)]
        if c["descriptors"]:
            heads.append(("D", c["descriptor_dim"]))
        for h, out in heads:
            self.add_module(f"conv{h}a", nn.Conv2d(width, c["head_channels"], 3, padding=1))
            self.add_module(f"conv{h}b", nn.Conv2d(c["head_channels"], out, 1))
            if bn:  # every head's 3x3 convolution: bnPa, and bnDa with descriptors
                self.add_module(f"bn{h}a", nn.BatchNorm2d(c["head_channels"]))
        with torch.no_grad():
            n = CELL * CELL
            self.convPb.bias[n] = math.log(DUSTBIN_PRIOR * n / (1 - DUSTBIN_PRIOR))

    def _head(self, h: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"conv{h}b")(conv_relu_bn(self, f"conv{h}a", x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cin = self.conf["in_channels"]
        if cin == 1 and x.shape[1] == 3:
            x = to_gray(x)
        if x.shape[1] != cin:
            raise ValueError(f"{type(self).__name__} takes {cin}-channel images, got {x.shape[1]}")
        h, w = x.shape[-2:]
        if h % CELL or w % CELL:
            raise ValueError(
                f"{type(self).__name__}: image size {h}x{w} is not a multiple of {CELL}"
            )
        feats = vgg_cells(self, x, 4)
        out = {"logits": self._head("P", feats)}
        if self.conf["descriptors"]:
            out["descriptors"] = F.normalize(self._head("D", feats), dim=1)
        return out


class MagicPoint(SuperPoint):
    """SuperPoint's detector alone: output {"logits": (B, 65, H/8, W/8)}."""

    default_conf = {**SuperPoint.default_conf, "descriptors": False}


def sample_descriptors(
    descriptors: torch.Tensor, keypoints: list[torch.Tensor] | torch.Tensor
) -> list[torch.Tensor]:
    """Descriptors at points, bilinear on the coarse map, re-normalised.

    descriptors (B, D, Hc, Wc); keypoints B x (N_b, 2) or (B, N, 2) float (x, y) pixels.
    Point (x, y) reads the map at cell coordinates ((x - 3.5) / 8, (y - 3.5) / 8); points
    beyond the outer cell centres take the border cells. Returns B x (N_b, D).
    """
    b, _, hc, wc = descriptors.shape
    if len(keypoints) != b:
        raise ValueError(f"{len(keypoints)} keypoint sets for {b} descriptor maps")
    # cell coordinates -> grid_sample's [-1, 1] with align_corners=True (-1: first cell
    # centre, 1: last); a one-cell axis reads that cell whatever the coordinate
    scale = torch.tensor([max(wc - 1, 1), max(hc - 1, 1)], device=descriptors.device)
    out = []
    for i, pts in enumerate(keypoints):
        cells = (pts.to(descriptors.device, torch.float32) - CELL_CENTRE) / CELL
        grid = (2 * cells / scale - 1).to(descriptors.dtype).view(1, 1, -1, 2)
        d = F.grid_sample(
            descriptors[i : i + 1], grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        out.append(F.normalize(d[0, :, 0].t(), dim=1))
    return out
