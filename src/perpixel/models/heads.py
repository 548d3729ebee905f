"""Segmentation heads shared by the backbone models: DeepLab's LargeFOV and ASPP (v2, v3),
the DeepLab v3+ decoder, PSPNet's pyramid pooling and the Panoptic FPN semantic branch.

Every head takes backbone features (B, C, h, w) and keeps their resolution unless stated;
the models upsample the class scores to the input size. Batch norms are `BatchNorm2d`, which
also trains on a single value per channel (a pooled 1x1 map of one image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn as nn
import torch.nn.functional as F


class BatchNorm2d(nn.BatchNorm2d):
    """`nn.BatchNorm2d` (same parameters and buffers) that, in training on one value per
    channel (batch 1 of a 1x1 map), where batch statistics do not exist, normalises with the
    running statistics instead of raising."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + `BatchNorm2d` + ReLU: (B, cin, h, w) -> (B, cout, h, w)."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def resize(x: torch.Tensor, size: Sequence[int] | torch.Size) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, *size), bilinear, align_corners=False; always interpolates (the
    identity at the same size), so that an ONNX trace stays right at every size."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _bin_windows(n: int, bins: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bins, n) 0/1 indicator of each bin's window along a side of n pixels, (bins,) window
    lengths; windows as adaptive pooling's: [floor(i n / bins), ceil((i + 1) n / bins))."""
    i = torch.arange(bins, device=like.device)
    start = torch.div(i * n, bins, rounding_mode="floor")
    end = torch.div((i + 1) * n + (bins - 1), bins, rounding_mode="floor")
    j = torch.arange(n, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype), (end - start).to(like.dtype)


def bin_average_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, bins, bins): `F.adaptive_avg_pool2d(x, bins)` (same windows,
    also for bins > h), as window sums by matrix products over index arithmetic on the traced
    size, so that it exports to ONNX for any input size (adaptive pooling does not). Divided
    as PyTorch's CPU kernel divides (the mean for 1 bin, else sum / rows / columns), so that
    sums without rounding error (integer values) give bit-identical averages."""
    if bins == 1:
        return x.mean(dim=(2, 3), keepdim=True)
    rows, n_rows = _bin_windows(x.shape[-2], bins, x)
    cols, n_cols = _bin_windows(x.shape[-1], bins, x)
    sums = rows @ x @ cols.transpose(0, 1)
    return sums / n_rows[:, None] / n_cols[None, :]


class LargeFOV(nn.Module):
    """DeepLab v1's DeepLab-LargeFOV head (Chen et al. 2015): pool5 (3x3 max-pool, stride
    1), fc6 (3x3 conv, dilation `rate`) + ReLU + dropout, fc7 (1x1) + ReLU + dropout, fc8
    (1x1 to the classes): (B, cin, h, w) -> (B, num_classes, h, w)."""

    def __init__(
        self, cin: int, num_classes: int, channels: int = 1024, rate: int = 12, dropout: float = 0.5
    ):
        super().__init__()
        self.pool5 = nn.MaxPool2d(3, 1, 1)
        self.fc6 = nn.Conv2d(cin, channels, 3, padding=rate, dilation=rate)
        self.fc7 = nn.Conv2d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.fc8 = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(F.relu(self.fc6(self.pool5(x))))
        x = self.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)


class ASPPV2(nn.Module):
    """DeepLab v2's atrous spatial pyramid pooling (ASPP-L, Chen et al. 2017): parallel 3x3
    convolutions at dilations `rates` straight to class scores, summed: (B, cin, h, w) ->
    (B, num_classes, h, w). `dropout` acts on the input."""

    def __init__(
        self,
        cin: int,
        num_classes: int,
        rates: Sequence[int] = (6, 12, 18, 24),
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.branches = nn.ModuleList(
            nn.Conv2d(cin, num_classes, 3, padding=r, dilation=r) for r in rates
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class ImagePooling(nn.Module):
    """DeepLab v3's image-level features: global average pool, 1x1 conv + BN + ReLU, spread
    over the map (bilinear upsampling of a 1x1 map): (B, cin, h, w) -> (B, cout, h, w),
    constant over space."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = conv_bn_relu(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean(dim=(2, 3), keepdim=True))
        return y.expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(nn.Module):
    """DeepLab v3's ASPP (Chen et al. 2017, "Rethinking atrous convolution"): a 1x1 conv and
    3x3 convs at dilations `rates` (each + BN + ReLU), image pooling (`ImagePooling`),
    concatenated, 1x1 projection + BN + ReLU + dropout: (B, cin, h, w) -> (B, channels, h, w).
    The paper's rates are (6, 12, 18) at output stride 16 and (12, 24, 36) at 8."""

    def __init__(
        self,
        cin: int,
        channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        dropout: float = 0.1,
    ):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, channels)])
        self.branches.extend(conv_bn_relu(cin, channels, 3, r) for r in rates)
        self.pool = ImagePooling(cin, channels)
        self.project = conv_bn_relu((len(rates) + 2) * channels, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([b(x) for b in self.branches] + [self.pool(x)], dim=1)
        return self.dropout(self.project(y))


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLab v3+'s decoder (Chen et al. 2018): the low-level (stride-4) feature 1x1 to
    `low_channels` + BN + ReLU, the ASPP output upsampled (bilinear) to it, concatenated,
    two 3x3 convs to `channels` + BN + ReLU: (B, cin, h, w), low (B, cin_low, H4, W4) ->
    (B, channels, H4, W4)."""

    def __init__(self, cin: int, cin_low: int, low_channels: int = 48, channels: int = 256):
        super().__init__()
        self.reduce = conv_bn_relu(cin_low, low_channels)
        self.fuse = nn.Sequential(
            conv_bn_relu(cin + low_channels, channels, 3),
            conv_bn_relu(channels, channels, 3),
        )

    def forward(self, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        low = self.reduce(low)
        return self.fuse(torch.cat([resize(x, low.shape[-2:]), low], dim=1))


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module (Zhao et al. 2017): per bin count in `bins`, average
    pooling to bins x bins (`bin_average_pool`), 1x1 conv to cin / len(bins) + BN + ReLU,
    bilinear upsampling; concatenated with the input, 3x3 conv to `channels` + BN + ReLU +
    dropout: (B, cin, h, w) -> (B, channels, h, w)."""

    def __init__(
        self,
        cin: int,
        channels: int = 512,
        bins: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
    ):
        super().__init__()
        self.bins = tuple(bins)
        reduced = max(1, cin // len(self.bins))
        self.stages = nn.ModuleList(conv_bn_relu(cin, reduced) for _ in self.bins)
        self.bottleneck = conv_bn_relu(cin + len(self.bins) * reduced, channels, 3)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            resize(stage(bin_average_pool(x, b)), size)
            for b, stage in zip(self.bins, self.stages, strict=True)
        ]
        return self.dropout(self.bottleneck(torch.cat([x, *pooled], dim=1)))


def _up_block(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv (no bias) + GroupNorm (32 groups, or fewer dividing cout) + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.GroupNorm(math.gcd(32, cout), cout),
        nn.ReLU(inplace=True),
    )


class FPNSemanticHead(nn.Module):
    """Feature pyramid (Lin et al. 2017) + Panoptic FPN's semantic branch (Kirillov et al.
    2019) to class scores at stride 4.

    Features (B, in_channels[k], ceil(H / s_k), ceil(W / s_k)) at `strides` s_k, finest first:
    4, 8, ... up to at most 32, doubling or repeating (a dilated stage). The pyramid: lateral
    1x1 convs to `fpn_channels`, top-down nearest 2x upsampling (cropped to the finer size;
    none between equal strides) + add, 3x3 output convs. The semantic branch: per level, 3x3
    conv to `channels` + GroupNorm + ReLU + bilinear 2x upsampling (to the finer level's size),
    repeated until stride 4 (one block without upsampling at stride 4); summed, dropout, 1x1
    to the classes. Output (B, num_classes, ceil(H / 4), ceil(W / 4)).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int],
        num_classes: int,
        fpn_channels: int = 256,
        channels: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        steps = [int(math.log2(s)) - 2 for s in strides]
        if steps[0] != 0 or any(
            b - a not in (0, 1) for a, b in zip(steps, steps[1:], strict=False)
        ):
            raise ValueError(f"FPN: strides must be 4, 8, ... doubling or equal, got {strides}")
        self.steps = steps
        self.lateral = nn.ModuleList(nn.Conv2d(c, fpn_channels, 1) for c in in_channels)
        self.output_convs = nn.ModuleList(
            nn.Conv2d(fpn_channels, fpn_channels, 3, padding=1) for _ in in_channels
        )
        self.semantic = nn.ModuleList(
            nn.ModuleList(
                _up_block(fpn_channels if i == 0 else channels, channels) for i in range(max(1, n))
            )
            for n in steps
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        p = self.lateral[-1](feats[-1])
        merged = [p]
        for k in range(len(feats) - 2, -1, -1):
            lat = self.lateral[k](feats[k])
            if self.steps[k + 1] > self.steps[k]:
                p = F.interpolate(p, scale_factor=2.0, mode="nearest")
                p = p[..., : lat.shape[-2], : lat.shape[-1]]
            p = lat + p
            merged.insert(0, p)
        # the size at each number of 2x steps above stride 4: the first level that has it
        sizes: dict[int, torch.Size] = {}
        for n, f in zip(self.steps, feats, strict=True):
            sizes.setdefault(n, f.shape[-2:])
        out = None
        for k, (p, blocks) in enumerate(zip(merged, self.semantic, strict=True)):
            y = self.output_convs[k](p)
            for i, block in enumerate(cast(nn.ModuleList, blocks)):
                y = block(y)
                if self.steps[k] > 0:
                    y = resize(y, sizes[self.steps[k] - i - 1])
            out = y if out is None else out + y
        assert out is not None
        return self.classifier(self.dropout(out))
