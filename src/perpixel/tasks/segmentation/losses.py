"""Segmentation losses: pixel-wise (class-weighted) cross-entropy, soft Dice, weighted sums."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = 255, smooth: float = 1.0
) -> torch.Tensor:
    """Soft multi-class Dice loss, 1 - mean over classes of the batch-level soft Dice.

    Args:
        logits: (B, C, H, W) class scores.
        target: (B, H, W) class ids; `ignore_index` pixels contribute nothing.
        smooth: added to numerator and denominator (a class absent from a batch scores 1).

    Returns:
        scalar loss in [0, 1].
    """
    c = logits.shape[1]
    probs = logits.float().softmax(1)
    valid = (
        torch.ones_like(target, dtype=torch.bool)
        if ignore_index is None
        else target != ignore_index
    )
    onehot = F.one_hot(torch.where(valid, target, 0).long(), c).permute(0, 3, 1, 2).float()
    v = valid.unsqueeze(1).float()
    probs, onehot = probs * v, onehot * v
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + smooth) / (denom + smooth)).mean()


class DiceLoss(nn.Module):
    """Module form of `dice_loss`."""

    def __init__(self, ignore_index: int | None = 255, smooth: float = 1.0):
        super().__init__()
        self.ignore_index, self.smooth = ignore_index, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_loss(logits, target, self.ignore_index, self.smooth)


def class_pixel_counts(
    masks, num_classes: int, ignore_index: int | None = 255
) -> tuple[np.ndarray, np.ndarray]:
    """Label statistics over an iterable of (H, W) masks.

    Returns:
        counts: (C,) pixels of each class.
        image_pixels: (C,) valid pixels of the images in which each class occurs.
    """
    counts = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    for m in masks:
        m = np.asarray(m).ravel()
        if ignore_index is not None:
            m = m[m != ignore_index]
        h = np.bincount(m, minlength=num_classes)[:num_classes]
        counts += h
        image_pixels[h > 0] += m.size
    return counts, image_pixels


def class_weights(
    counts: np.ndarray, image_pixels: np.ndarray | None = None, method: str = "median_frequency"
) -> np.ndarray:
    """Per-class loss weights from label statistics (`class_pixel_counts`).

    - `median_frequency` (Eigen & Fergus 2015, as SegNet): freq_c = count_c / pixels of the
      images containing c; w_c = median(freq) / freq_c.
    - `sqrt_median_frequency`: the square root of `median_frequency`, the gentler choice
      for small data sets: rare classes are still learned, but a class seen in a handful of
      pixels does not get weights of 100 that swamp the gradient of the others.
    - `inverse_frequency`: w_c proportional to 1 / (count_c / total), scaled to mean 1.
    Classes that never occur get weight 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    if not present.any():
        raise ValueError("no labelled pixel: cannot compute class weights")
    if method in ("median_frequency", "sqrt_median_frequency"):
        if image_pixels is None:
            raise ValueError(f"{method} needs the image_pixels statistics")
        freq = counts[present] / np.asarray(image_pixels, dtype=np.float64)[present]
        w[present] = np.median(freq) / freq
        if method == "sqrt_median_frequency":
            w = np.sqrt(w)
    elif method == "inverse_frequency":
        inv = counts.sum() / counts[present]
        w[present] = inv / inv.mean()
    else:
        raise ValueError(
            f"unknown class-weighting method {method!r}: median_frequency, "
            "sqrt_median_frequency or inverse_frequency"
        )
    return w


class SegmentationLoss(nn.Module):
    """`ce * CrossEntropy(weight=class_weights) + dice * Dice`, ignoring `ignore_index`.

    Input logits (B, C, H, W), target (B, H, W) class ids. Returns a scalar.
    """

    class_weights: torch.Tensor | None  # a buffer

    def __init__(
        self,
        ce: float = 1.0,
        dice: float = 0.0,
        class_weights: Sequence[float] | None = None,
        ignore_index: int = 255,
    ):
        super().__init__()
        self.ce, self.dice, self.ignore_index = ce, dice, ignore_index
        w = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", w)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.ce:
            loss = loss + self.ce * weighted_cross_entropy(
                logits, target, self.class_weights, self.ignore_index
            )
        if self.dice:
            loss = loss + self.dice * dice_loss(logits, target, self.ignore_index)
        return loss


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """`F.cross_entropy(logits, target, weight, ignore_index)` (weighted mean over valid
    pixels), but 0 instead of NaN when no pixel carries weight (all ignored, or only
    zero-weight classes)."""
    per_pixel = F.cross_entropy(
        logits.float(), target, weight=weight, ignore_index=ignore_index, reduction="none"
    )
    valid = target != ignore_index
    if weight is None:
        den = valid.sum()
    else:
        den = (weight[torch.where(valid, target, 0)] * valid).sum()
    return per_pixel.sum() / den.clamp_min(1e-12)
