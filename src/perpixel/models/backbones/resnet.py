"""ResNet-18/34/50 (He et al. 2016) without the classifier, with torchvision's module names
(`conv1`, `bn1`, `layer1`..`layer4`, `downsample.0/1`), so torchvision ImageNet state dicts
load key for key; optional dilation instead of striding in the last stages (DeepLab's
atrous backbone, output stride 8 or 16)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

# blocks per stage and block type of each depth
RESNET_LAYERS = {18: ((2, 2, 2, 2), "basic"), 34: ((3, 4, 6, 3), "basic"), 50: ((3, 4, 6, 3), "bottleneck")}  # fmt: skip
RESNET_WIDTHS = (64, 128, 256, 512)  # `planes` per stage (Bottleneck outputs 4x)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions + BN, identity (or 1x1 `downsample`) shortcut:
    (B, cin, H, W) -> (B, planes, H / stride, W / stride)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, dilation: int, first_dilation: int):
        super().__init__()
        d0 = first_dilation
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, padding=d0, dilation=d0, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, as torchvision's "v1.5"), 1x1 expand to 4 x planes, each
    with BN: (B, cin, H, W) -> (B, 4 planes, H / stride, W / stride)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, dilation: int, first_dilation: int):
        super().__init__()
        d0 = first_dilation
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=d0, dilation=d0, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """The ResNet trunk: 7x7/2 stem + BN + ReLU, 3x3/2 max-pool, four stages of blocks.

    `output_stride` 32 (the classifier's), 16 or 8: the last one or two stages keep the
    resolution and dilate their 3x3 convolutions by 2 (and 4) instead, as torchvision's
    `replace_stride_with_dilation` (the first block of a dilated stage keeps the previous
    dilation). Input (B, in_channels, H, W) in the network's own normalisation (`preprocess`
    maps RGB in [0, 1] to it). Output 5 features, finest first, at `strides` (2, 4, 8, 16,
    32 for output stride 32; sizes rounded up): the stem and the four stages, with
    `out_channels` (64, 64 e, 128 e, 256 e, 512 e) for e = 1 (18, 34) or 4 (50).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        depth: int = 50,
        in_channels: int = 3,
        output_stride: int = 32,
        widths: Sequence[int] = RESNET_WIDTHS,
    ):
        super().__init__()
        if depth not in RESNET_LAYERS:
            raise ValueError(f"ResNet: depth must be one of {sorted(RESNET_LAYERS)}, got {depth}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"ResNet: output_stride must be 8, 16 or 32, got {output_stride}")
        if len(widths) != 4:
            raise ValueError(f"ResNet: widths needs 4 entries, got {list(widths)}")
        blocks, kind = RESNET_LAYERS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.in_channels = depth, in_channels
        stem = widths[0]
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, dilation, stride_now = stem, 1, 4
        self.out_channels, self.strides = [stem], [2]
        for k, (planes, n) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if k == 0 else 2
            first = dilation
            if stride == 2 and stride_now * 2 > output_stride:
                dilation, stride = dilation * 2, 1
            stride_now *= stride
            layers = [block(cin, planes, stride, dilation, first)]
            cin = planes * block.expansion
            layers += [block(cin, planes, 1, dilation, dilation) for _ in range(n - 1)]
            self.add_module(f"layer{k + 1}", nn.Sequential(*layers))
            self.out_channels.append(cin)
            self.strides.append(stride_now)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> torchvision's ImageNet normalisation (other channel counts:
        centred on 0.5 and scaled by 1 / 0.225)."""
        if x.shape[1] != 3:
            return (x - 0.5) / 0.225
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        feats = [x]
        x = self.maxpool(x)
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
            feats.append(x)
        return feats
