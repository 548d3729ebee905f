"""A cheap validation score for edge training: an approximate boundary F-measure (the real
benchmark is `perpixel.tasks.edges.bsds`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def approx_f_counts(
    prob: torch.Tensor,
    edges: torch.Tensor,
    annotators: torch.Tensor,
    thresholds: torch.Tensor,
    radius: int,
) -> torch.Tensor:
    """Counts for an APPROXIMATE boundary F-measure (a training monitor, not the benchmark:
    no thinning, no one-to-one matching; `perpixel edges bench` gives the real ODS/OIS/AP).

    A predicted pixel (prob >= t) is correct when a human boundary lies within `radius`
    pixels (square window); an annotator's boundary pixel is found when a predicted pixel
    lies within `radius`, counted once per annotator who marked it.

    Args:
        prob: (B, 1, H, W) edge probabilities; edges: (B, 1, H, W) fractions (-1 = not scored);
        annotators: (B,); thresholds: (T,).

    Returns:
        (4, T) float64: matched predictions, predictions, matched human pixels, human pixels.
    """
    valid = edges >= 0
    counts = (edges.clamp(min=0) * annotators.view(-1, 1, 1, 1).to(edges)).round()
    pred = ((prob >= thresholds.view(1, -1, 1, 1).to(prob)) & valid).float()  # (B, T, H, W)
    k = 2 * radius + 1
    near_pred = F.max_pool2d(pred, k, 1, radius)
    near_gt = F.max_pool2d((counts > 0).float(), k, 1, radius)
    dims = (0, 2, 3)
    return torch.stack(
        [
            (pred * near_gt).sum(dims),
            pred.sum(dims),
            (near_pred * counts).sum(dims),
            counts.sum(dims).expand(len(thresholds)),
        ]
    ).double()


def f_from_counts(c: torch.Tensor) -> tuple[float, int]:
    """(best F over thresholds, its threshold index) from `approx_f_counts` sums."""
    p = c[0] / c[1].clamp(min=1)
    r = c[2] / c[3].clamp(min=1)
    f = torch.where(p + r > 0, 2 * p * r / (p + r), torch.zeros_like(p))
    i = int(f.argmax())
    return float(f[i]), i
