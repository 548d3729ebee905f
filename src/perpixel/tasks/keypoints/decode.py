"""Heat map -> keypoints: threshold, exact greedy non-maximum suppression, border, top k."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError


def nms(heat: torch.Tensor, radius: int) -> torch.Tensor:
    """Exact greedy NMS of heat (B, H, W) with a (2r+1) x (2r+1) window -> (B, H, W) bool.

    Greedy: visit the pixels with a positive score by descending score (ties: lower flat index
    h * W + w first); keep one unless an already kept pixel lies within Chebyshev distance r.

    Batched form: give every pixel its rank in that visiting order; repeat "keep each remaining
    pixel that comes first among the remaining ones of its window, then drop every remaining
    pixel within r of a kept one" until none remain. It equals the greedy result: (1) a pixel
    within r of a kept pixel is dropped, so no kept pixel lies in the window of a remaining one,
    and greedy's decision for a remaining p depends only on remaining pixels before p in its
    window; (2) if none exists, greedy keeps p, as we do; (3) every q dropped next to a kept p
    comes after p (p is first in its window, which holds q) and is within r of it, so greedy
    suppresses q too. The first remaining pixel overall is always kept, so the loop ends."""
    if radius < 0:
        raise ConfigError(f"nms radius must be >= 0, got {radius}")
    b, h, w = heat.shape
    n = h * w
    flat = heat.reshape(b, n)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=heat.device).expand(b, n))
    dtype = torch.float32 if n < 2**24 else torch.float64  # ranks exact in the pool's dtype
    remaining = (flat > 0).view(b, 1, h, w)
    key = (n - rank).to(dtype).view(b, 1, h, w) * remaining  # larger: visited earlier; 0: none
    keep = torch.zeros_like(remaining)
    k = 2 * radius + 1
    while remaining.any():
        first = remaining & (F.max_pool2d(key, k, stride=1, padding=radius) == key)
        keep |= first
        near = F.max_pool2d(first.to(dtype), k, stride=1, padding=radius) > 0
        remaining &= ~near
        key = key * remaining
    return keep[:, 0]


def detect(
    heat: torch.Tensor,
    radius: int = 4,
    threshold: float = 0.015,
    top_k: int | None = None,
    border: int = 4,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Heat (B, H, W) -> per image (keypoints (N, 2) float xy, scores (N,)) by descending score
    (ties: lower flat index first): scores >= `threshold` (and > 0), greedy NMS of `radius`,
    none within `border` pixels of the edge, then the `top_k` best (None: all)."""
    if border < 0 or (top_k is not None and top_k < 0):
        raise ConfigError(f"detect: border and top_k must be >= 0, got {border}, {top_k}")
    _, h, w = heat.shape
    keep = nms(torch.where(heat >= threshold, heat, torch.zeros_like(heat)), radius)
    if border > 0:
        keep[:, :border] = False
        keep[:, h - border :] = False
        keep[:, :, :border] = False
        keep[:, :, w - border :] = False
    out = []
    for heat_b, keep_b in zip(heat, keep, strict=True):
        ys, xs = torch.nonzero(keep_b, as_tuple=True)  # flat-index order
        scores, order = torch.sort(heat_b[ys, xs], descending=True, stable=True)
        if top_k is not None:
            scores, order = scores[:top_k], order[:top_k]
        points = torch.stack([xs[order], ys[order]], -1).float()
        out.append((points, scores))
    return out
