"""Backbones: trunks without a head, returning a list of feature maps, finest first;
`out_channels` lists their widths and `strides` their down-sampling factors, in the same
order; `preprocess(x)` maps RGB in [0, 1] to the input normalisation their pretrained weights
expect. `build_backbone(name, ...)` makes the ones the segmentation heads share."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn

from perpixel.models.backbones.resnet import RESNET_LAYERS, RESNET_WIDTHS, ResNet
from perpixel.models.backbones.unet import UNetTrunk, doubling_widths
from perpixel.models.backbones.vgg import VGG16, VGG16_CONVS, VGG16_WIDTHS, vgg16_conv_names

BACKBONES = ("vgg16", "resnet18", "resnet34", "resnet50")


def build_backbone(
    name: str,
    in_channels: int = 3,
    output_stride: int = 16,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    """A backbone by name: "vgg16" (output stride 16 or 8) or "resnet18/34/50" (32, 16 or
    8). `widths`: the stage widths (VGG16's 5, ResNet's 4 `planes`), None for the standard
    ones that pretrained weights need. ValueError for an unknown name or stride."""
    if name == "vgg16":
        return VGG16(in_channels, widths or VGG16_WIDTHS, output_stride)
    if name.startswith("resnet") and name[6:].isdigit() and int(name[6:]) in RESNET_LAYERS:
        return ResNet(int(name[6:]), in_channels, output_stride, widths or RESNET_WIDTHS)
    raise ValueError(f"unknown backbone {name!r}; choose one of {list(BACKBONES)}")


__all__ = [
    "BACKBONES",
    "VGG16",
    "VGG16_CONVS",
    "VGG16_WIDTHS",
    "ResNet",
    "UNetTrunk",
    "build_backbone",
    "doubling_widths",
    "vgg16_conv_names",
]
