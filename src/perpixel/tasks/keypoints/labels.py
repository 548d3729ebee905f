"""Points <-> SuperPoint's 65-way cell labels, and the detector's full-resolution heat map.

A label map is (B, H/8, W/8) long: k < 64 puts the cell's point at row k // 8, col k % 8 of
the 8x8 cell; 64 is the dustbin (no point). This is pixel_shuffle(·, 8)'s channel order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from perpixel.errors import DataError
from perpixel.tasks.keypoints.homographies import inside

DUSTBIN = 64


def _check_shape(shape: tuple[int, int]) -> None:
    if shape[0] % 8 or shape[1] % 8:
        raise DataError(f"image size {shape[0]}x{shape[1]} is not a multiple of 8")


def points_to_cells(
    points: list[torch.Tensor], shape: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Points [(N_i, 2) xy] of B images of `shape` (H, W) -> labels (B, H/8, W/8) long in
    0..64. A point's pixel is (round(y), round(x)); points outside the image are ignored. When
    several points fall in one cell, one of them, drawn uniformly with `generator` (a CPU
    one), is kept: the labels can hold one point per cell (SuperPoint's rule)."""
    _check_shape(shape)
    h, w = shape
    hc, wc = h // 8, w // 8
    device = points[0].device if points else torch.device("cpu")
    labels = torch.full((len(points), hc * wc), DUSTBIN, dtype=torch.long, device=device)
    for b, p in enumerate(points):
        p = p[inside(p, shape)]
        if not len(p):
            continue
        col = p[:, 0].round().long().clamp(0, w - 1)
        row = p[:, 1].round().long().clamp(0, h - 1)
        cell = (row // 8) * wc + col // 8
        channel = (row % 8) * 8 + col % 8
        # a random priority per point; the highest of each cell wins
        priority = torch.randperm(len(p), generator=generator).to(device)
        best = torch.full((hc * wc,), -1, dtype=torch.long, device=device)
        best = best.scatter_reduce(0, cell, priority, reduce="amax")
        win = priority == best[cell]
        labels[b, cell[win]] = channel[win]
    return labels.view(len(points), hc, wc)


def cells_to_points(labels: torch.Tensor) -> list[torch.Tensor]:
    """Labels (B, Hc, Wc) -> [(N, 2) float xy], integer pixel coordinates, in cell order; the
    inverse of `points_to_cells` for points with at most one per cell."""
    out = []
    for lab in labels:
        i, j = torch.nonzero(lab < DUSTBIN, as_tuple=True)
        k = lab[i, j]
        x, y = 8 * j + k % 8, 8 * i + k // 8
        out.append(torch.stack([x, y], -1).float())
    return out


def cell_mask(valid: torch.Tensor) -> torch.Tensor:
    """Pixel validity (B, 1, H, W) (bool or float, > 0.5 valid) -> (B, H/8, W/8) bool: a cell
    counts only if all of its 64 pixels are valid."""
    b, _, h, w = valid.shape
    _check_shape((h, w))
    v = valid > 0.5 if valid.dtype != torch.bool else valid
    return v.view(b, h // 8, 8, w // 8, 8).all(4).all(2)


def heatmap(logits: torch.Tensor) -> torch.Tensor:
    """Detector logits (B, 65, Hc, Wc) -> point probability (B, 8 Hc, 8 Wc) float32: softmax
    over the 65 channels (in float32), dustbin dropped, depth to space."""
    prob = logits.float().softmax(1)[:, :DUSTBIN]
    return F.pixel_shuffle(prob, 8)[:, 0]
