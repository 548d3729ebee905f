"""The VGG16 trunk (Simonyan & Zisserman 2015) without its classifier, as HED uses it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

VGG16_CONVS = (2, 2, 3, 3, 3)  # 3x3 convolutions per stage
VGG16_WIDTHS = (64, 128, 256, 512, 512)
# Caffe's BGR pixel means (0..255) that the HED weights (and Caffe's VGG16) were trained with
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)


def to_caffe_bgr(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> Caffe BGR on 0..255 minus `mean` ((1, 3, 1, 1), BGR)."""
    return x.flip(1) * 255 - mean.to(x.dtype)


def vgg16_conv_names() -> list[list[str]]:
    """The module names of the 13 convolutions in `VGG16`, per stage: "blocks.{k}.{i}"."""
    # in each stage after the first, index 0 is the max-pool; every convolution has its ReLU
    return [
        [f"blocks.{k}.{int(k > 0) + 2 * i}" for i in range(n)] for k, n in enumerate(VGG16_CONVS)
    ]


class VGG16(nn.Module):
    """Five stages of 3x3 convolutions + ReLU; each stage after the first starts with a 2x2
    max-pool of stride 2 that rounds odd sizes up (Keras 'same' padding = `ceil_mode=True`).

    Input (B, in_channels, H, W). Output the 5 stage features, finest first:
    (B, widths[k], ceil(H / 2**k), ceil(W / 2**k)) for k = 0..4.
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = VGG16_WIDTHS):
        super().__init__()
        if len(widths) != len(VGG16_CONVS):
            raise ValueError(f"VGG16: widths needs {len(VGG16_CONVS)} entries, got {list(widths)}")
        self.out_channels = list(widths)
        self.blocks = nn.ModuleList()
        cin = in_channels
        for k, (width, n) in enumerate(zip(widths, VGG16_CONVS, strict=True)):
            layers: list[nn.Module] = [nn.MaxPool2d(2, 2, ceil_mode=True)] if k else []
            for _ in range(n):
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
                cin = width
            self.blocks.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats
