"""Segmentation models: (B, 3, H, W) in [0, 1] -> (B, C, H, W) class logits."""

from __future__ import annotations

from perpixel.models.segmentation.linear import PixelLinear
from perpixel.models.segmentation.unet import UNet
from perpixel.models.segmentation.vgg_unet import VGGUNet

__all__ = ["PixelLinear", "UNet", "VGGUNet"]
