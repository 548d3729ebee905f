"""Axis-aligned boxes: areas, IoU, the R-CNN box coder, greedy NMS, clipping.

Boxes are (..., 4) float tensors (x1, y1, x2, y2) in pixel units of the continuous image
plane, where pixel (row r, column c) is the unit square [c, c + 1) x [r, r + 1): a mask's box
is (min column, min row, max column + 1, max row + 1) and width = x2 - x1 (no "+ 1").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# exp() of a decoded size delta stays below 1000 / 16 (Detectron's `BBOX_XFORM_CLIP`)
DEFAULT_CLAMP = math.log(1000.0 / 16)
NMS_BLOCK = 256  # `nms`: boxes whose IoUs with the rest are computed at once


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) -> (...) areas in pixels^2 (0 for empty or inverted boxes)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(
        min=0
    )


def box_intersection(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4), (M, 4) -> (N, M) intersection areas."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4), (M, 4) -> (N, M) intersection over union (0 where the union is empty)."""
    inter = box_intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(a.dtype).tiny), 0.0)


def encode_boxes(
    targets: torch.Tensor, reference: torch.Tensor, weights: Sequence[float] = (10, 10, 5, 5)
) -> torch.Tensor:
    """The R-CNN regression targets of `targets` relative to `reference` boxes, both (..., 4):
    (wx dx / w, wy dy / h, ww log(w' / w), wh log(h' / h)) with dx, dy the centre shift."""
    wx, wy, ww, wh = weights
    w, h = reference[..., 2] - reference[..., 0], reference[..., 3] - reference[..., 1]
    cx, cy = reference[..., 0] + 0.5 * w, reference[..., 1] + 0.5 * h
    tw, th = targets[..., 2] - targets[..., 0], targets[..., 3] - targets[..., 1]
    tx, ty = targets[..., 0] + 0.5 * tw, targets[..., 1] + 0.5 * th
    return torch.stack(
        [
            wx * (tx - cx) / w,
            wy * (ty - cy) / h,
            ww * torch.log(tw / w),
            wh * torch.log(th / h),
        ],
        -1,
    )


def decode_boxes(
    deltas: torch.Tensor,
    reference: torch.Tensor,
    weights: Sequence[float] = (10, 10, 5, 5),
    clamp: float = DEFAULT_CLAMP,
) -> torch.Tensor:
    """Inverse of `encode_boxes`: deltas (..., 4) applied to `reference` (..., 4), shapes
    broadcasting -> boxes (..., 4). Size deltas are clamped at `clamp` before exp()."""
    wx, wy, ww, wh = weights
    w, h = reference[..., 2] - reference[..., 0], reference[..., 3] - reference[..., 1]
    cx, cy = reference[..., 0] + 0.5 * w, reference[..., 1] + 0.5 * h
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw, dh = (deltas[..., 2] / ww).clamp(max=clamp), (deltas[..., 3] / wh).clamp(max=clamp)
    px, py = cx + dx * w, cy + dy * h
    pw, ph = w * torch.exp(dw), h * torch.exp(dh)
    return torch.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], -1)


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., 4) boxes clipped to an image of `size` (H, W): x in [0, W], y in [0, H]."""
    h, w = size
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """(N, 4) -> (K,) int64 indices of the boxes whose width and height are >= `min_size`."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((w >= min_size) & (h >= min_size)).flatten()


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    max_output: int | None = None,
) -> torch.Tensor:
    """Greedy non-maximum suppression: (N, 4), (N,) -> (K,) int64 indices of the kept boxes in
    decreasing score order. A box is dropped when its IoU with a kept, higher-scored box is
    > `iou_threshold` (ties in score: the lower index first). `max_output`: stop after that
    many (the first `max_output` of the full result).

    The IoUs of a block of `NMS_BLOCK` boxes with all lower-scored ones come in one step; the
    greedy pass over the block then only ORs rows of that (block, N) boolean matrix.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order]
    n = len(order)
    removed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    limit = n if max_output is None else max_output
    for start in range(0, n, NMS_BLOCK):
        stop = min(start + NMS_BLOCK, n)
        if len(keep) >= limit:
            break
        if removed[start:stop].all():
            continue
        over = (box_iou(b[start:stop], b[start:]) > iou_threshold).cpu().numpy()
        for i in range(start, stop):
            if removed[i]:
                continue
            keep.append(i)
            if len(keep) >= limit:
                break
            removed[start:] |= over[i - start]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    iou_threshold: float,
    max_output: int | None = None,
) -> torch.Tensor:
    """`nms` within each group (N,) int (class or level): boxes of different groups never
    suppress each other. -> (K,) int64 indices in decreasing score order."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # shift each group's boxes apart so that no two groups overlap
    span = boxes.max() - boxes.min() + 1
    shifted = boxes - boxes.min() + (groups.to(boxes) * span)[:, None]
    return nms(shifted, scores, iou_threshold, max_output)


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) float32 boxes (min x, min y, max x + 1, max y + 1); an empty
    mask gives (0, 0, 0, 0)."""
    n = masks.shape[0]
    if n == 0:
        return torch.zeros(0, 4, device=masks.device)
    rows, cols = masks.any(2), masks.any(1)  # (N, H), (N, W)
    h, w = masks.shape[1:]
    ar_y = torch.arange(h, device=masks.device).expand(n, h)
    ar_x = torch.arange(w, device=masks.device).expand(n, w)
    y1 = torch.where(rows, ar_y, h).min(1).values
    y2 = torch.where(rows, ar_y, -1).max(1).values + 1
    x1 = torch.where(cols, ar_x, w).min(1).values
    x2 = torch.where(cols, ar_x, -1).max(1).values + 1
    out = torch.stack([x1, y1, x2, y2], 1).float()
    return torch.where(masks.flatten(1).any(1)[:, None], out, 0.0)


def summed_area(mask: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., H + 1, W + 1) float64 summed-area table (a zero row and column
    first), for `box_coverage`."""
    s = mask.double().cumsum(-1).cumsum(-2)
    return torch.nn.functional.pad(s, (1, 0, 1, 0))


def box_coverage(table: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fraction of each box's in-image pixels that a mask covers, from the mask's (H + 1,
    W + 1) `summed_area` table: boxes (N, 4) -> (N,) in [0, 1] (0 for boxes outside). A
    pixel is in a box when its centre is."""
    h, w = table.shape[-2] - 1, table.shape[-1] - 1
    x1 = torch.round(boxes[:, 0]).long().clamp(0, w)
    x2 = torch.round(boxes[:, 2]).long().clamp(0, w)
    y1 = torch.round(boxes[:, 1]).long().clamp(0, h)
    y2 = torch.round(boxes[:, 3]).long().clamp(0, h)
    x2, y2 = torch.maximum(x1, x2), torch.maximum(y1, y2)
    inside = table[y2, x2] - table[y1, x2] - table[y2, x1] + table[y1, x1]
    area = ((x2 - x1) * (y2 - y1)).double()
    return torch.where(area > 0, inside / area.clamp(min=1), 0.0).to(boxes.dtype)
