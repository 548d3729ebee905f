"""Segmentation models: (B, 3, H, W) in [0, 1] -> (B, C, H, W) class logits."""

from __future__ import annotations

from perpixel.models.segmentation.deconvnet import DeconvNet
from perpixel.models.segmentation.deeplab import DeepLabV1, DeepLabV2, DeepLabV3, DeepLabV3Plus
from perpixel.models.segmentation.fcn import FCN, FCN8s, FCN16s, FCN32s
from perpixel.models.segmentation.filterbank import FilterBankLinear
from perpixel.models.segmentation.fpn import FPN
from perpixel.models.segmentation.linear import PixelLinear
from perpixel.models.segmentation.patch_cnn import PatchCNN
from perpixel.models.segmentation.pspnet import PSPNet
from perpixel.models.segmentation.segnet import SegNet, SegNetBasic
from perpixel.models.segmentation.superpixels import SuperpixelLinear
from perpixel.models.segmentation.unet import UNet
from perpixel.models.segmentation.vgg_unet import VGGUNet

__all__ = [
    "FPN",
    "DeepLabV1",
    "DeepLabV2",
    "DeepLabV3",
    "DeepLabV3Plus",
    "PSPNet",
    "FCN",
    "DeconvNet",
    "FCN8s",
    "FCN16s",
    "FCN32s",
    "SegNet",
    "SegNetBasic",
    "SuperpixelLinear",
    "FilterBankLinear",
    "PatchCNN",
    "PixelLinear",
    "UNet",
    "VGGUNet",
]
