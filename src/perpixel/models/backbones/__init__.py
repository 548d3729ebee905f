"""Backbones: trunks without a head, returning a list of feature maps; `out_channels` lists
their widths in the same order."""

from __future__ import annotations

from perpixel.models.backbones.unet import UNetTrunk, doubling_widths
from perpixel.models.backbones.vgg import VGG16, VGG16_CONVS, VGG16_WIDTHS, vgg16_conv_names

__all__ = [
    "VGG16",
    "VGG16_CONVS",
    "VGG16_WIDTHS",
    "UNetTrunk",
    "doubling_widths",
    "vgg16_conv_names",
]
