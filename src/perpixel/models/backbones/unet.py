"""The U-Net trunk (Ronneberger et al. 2015): encoder-decoder with skip connections."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.models.layers import Up, conv_block


def doubling_widths(base_channels: int, depth: int, max_channels: int) -> list[int]:
    """The `depth + 1` stage widths of a U-Net: `base_channels` doubling at every stage,
    capped at `max_channels`."""
    return [min(base_channels * 2**i, max_channels) for i in range(depth + 1)]


class UNetTrunk(nn.Module):
    """A U-Net without a head: `stem` and `depth = len(widths) - 1` `down` stages (2x2
    max-pool, two 3x3 convolutions), then `depth` `up` stages (`Up`, back to the widths of the
    encoder stages).

    Input (B, in_channels, H, W) with H and W multiples of `multiple` = 2**depth (pad with
    `perpixel.models.layers.pad_to_multiple`). Output the `depth` decoder features, coarsest
    first: (B, widths[depth - 1 - i], H / 2**(depth - 1 - i), W / 2**(depth - 1 - i)) for
    i = 0..depth-1; the last is at the input scale with widths[0] channels.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128, 256, 512),
        batch_norm: bool = True,
        upsample: str = "transpose",
    ):
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"UNetTrunk: depth must be at least 1 (got widths {list(widths)})")
        self.widths = widths = list(widths)
        depth = len(widths) - 1
        self.multiple = 2**depth
        self.out_channels = widths[-2::-1]  # of the decoder features, coarsest first
        self.stem = conv_block(in_channels, widths[0], batch_norm)
        self.down = nn.ModuleList(
            conv_block(widths[i], widths[i + 1], batch_norm) for i in range(depth)
        )
        self.up = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i], upsample, batch_norm)
            for i in reversed(range(depth))
        )

    @classmethod
    def from_conf(cls, c: dict) -> UNetTrunk:
        """The trunk of a U-Net model's options (`in_channels`, `base_channels`, `depth`,
        `max_channels`, `batch_norm`, `upsample`)."""
        widths = doubling_widths(c["base_channels"], c["depth"], c["max_channels"])
        return cls(c["in_channels"], widths, c["batch_norm"], c["upsample"])

    def decode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Decoder features, coarsest first (the same as calling the trunk)."""
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        feats = []
        for up in self.up:
            y = up(y, skips.pop())
            feats.append(y)
        return feats

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decode(x)
