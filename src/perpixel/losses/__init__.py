"""Losses for per-pixel classification."""

from perpixel.losses.segmentation import (
    DiceLoss,
    SegmentationLoss,
    class_pixel_counts,
    class_weights,
    dice_loss,
    weighted_cross_entropy,
)

__all__ = [
    "DiceLoss",
    "SegmentationLoss",
    "class_pixel_counts",
    "class_weights",
    "dice_loss",
    "weighted_cross_entropy",
]
