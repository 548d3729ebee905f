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

    Input (B, in_channels, H, W), Caffe BGR for the pretrained weights (`preprocess` maps RGB
    in [0, 1] to it). Output the 5 stage features, finest first: (B, widths[k],
    ceil(H / s_k), ceil(W / s_k)) at `strides` s = (1, 2, 4, 8, 16). `output_stride` 8 is
    DeepLab's: the last stage's pool becomes 3x3 with stride 1 and its convolutions dilate
    by 2 (same parameters, so the same weights load), strides (1, 2, 4, 8, 8).
    """

    mean: torch.Tensor

    def __init__(
        self, in_channels: int = 3, widths: Sequence[int] = VGG16_WIDTHS, output_stride: int = 16
    ):
        super().__init__()
        if len(widths) != len(VGG16_CONVS):
            raise ValueError(f"VGG16: widths needs {len(VGG16_CONVS)} entries, got {list(widths)}")
        if output_stride not in (8, 16):
            raise ValueError(f"VGG16: output_stride must be 8 or 16, got {output_stride}")
        self.out_channels = list(widths)
        self.strides = [1, 2, 4, 8, output_stride]
        self.blocks = nn.ModuleList()
        cin = in_channels
        for k, (width, n) in enumerate(zip(widths, VGG16_CONVS, strict=True)):
            dilated = k == 4 and output_stride == 8
            pool = nn.MaxPool2d(3, 1, 1) if dilated else nn.MaxPool2d(2, 2, ceil_mode=True)
            layers: list[nn.Module] = [pool] if k else []
            d = 2 if dilated else 1
            for _ in range(n):
                layers += [nn.Conv2d(cin, width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
                cin = width
            self.blocks.append(nn.Sequential(*layers))
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> Caffe BGR on 0..255 minus the mean (`to_caffe_bgr`); other channel
        counts: (x - 0.5) * 255."""
        if x.shape[1] != 3:
            return (x - 0.5) * 255
        return to_caffe_bgr(x, self.mean)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats
