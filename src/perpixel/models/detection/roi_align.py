"""RoIAlign (He et al., "Mask R-CNN", ICCV 2017) with the semantics of torchvision's
`roi_align` / Detectron2's `ROIAlign`, in plain PyTorch.

Each output bin averages `g_y x g_x` bilinear samples at the centres of a regular grid over
the bin; `aligned=True` shifts the box by -0.5 feature pixels, so that a box's continuous
coordinates (pixel c = [c, c + 1)) line up with feature pixel centres. A sample at y < -1 or
y > H (or x likewise) reads 0; samples in [-1, 0) read row 0 and those past H - 1 the last
row. Bilinear sampling is separable, so each RoI's output is two small matrix products over
the window of feature pixels it touches: (P, h) @ window (h, w, C) @ (w, Q)^T (for windows
near the whole map: over the whole map, one product per image for all its RoIs).
"""

from __future__ import annotations

import torch
import torch.nn as nn

_BUDGET = 1 << 23  # window elements per chunk of RoIs (memory bound)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _axis_weights(
    start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor, bins: int, first: torch.Tensor,
    span: int, size: int,
) -> torch.Tensor:  # fmt: skip
    """Sampling weights along one axis: (K, bins, span), entry [k, p, j] = the mean over bin
    p's grid[k] samples of their bilinear weight on feature row first[k] + j (0 for samples
    outside [-1, size])."""
    g_max = max(int(grid.max()), 1)
    i = torch.arange(g_max, device=start.device, dtype=start.dtype)
    p = torch.arange(bins, device=start.device, dtype=start.dtype)
    g = grid.to(start.dtype).clamp(min=1)[:, None, None]
    pos = (
        start[:, None, None]
        + p[None, :, None] * bin_size[:, None, None]
        + (i + 0.5)[None, None, :] * bin_size[:, None, None] / g
    )  # (K, bins, G)
    valid = (i[None, None, :] < grid[:, None, None]) & (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(0, size - 1)
    rows = (first[:, None] + torch.arange(span, device=start.device)).to(start.dtype)  # (K, span)
    tent = (1 - (pos[..., None] - rows[:, None, None, :]).abs()).clamp(min=0)  # (K, bins, G, span)
    return (tent * valid[..., None].to(start.dtype)).sum(2) / g


def _window(lo: torch.Tensor, hi: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First feature row and number of rows (both (K,) int64) that samples in [lo, hi] touch."""
    first = lo.clamp(0, size - 1).floor().long()
    last = (hi.clamp(0, size - 1).floor().long() + 1).clamp(max=size - 1)
    return first, (last - first + 1).clamp(min=1)


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = True,
) -> torch.Tensor:
    """Bilinear RoI pooling.

    Args:
        features: (B, C, H, W).
        rois: (K, 5) rows (batch index, x1, y1, x2, y2) in input pixels (not differentiated).
        output_size: P or (P, Q) bins.
        spatial_scale: feature pixels per input pixel (1 / stride).
        sampling_ratio: samples per bin along each axis; <= 0: ceil(RoI size / bins) per RoI.
        aligned: shift the box by -0.5 feature pixels (else: RoI sizes are at least 1).

    Returns:
        (K, C, P, Q), differentiable with respect to `features`.
    """
    ph, pw = _pair(output_size)
    _, c, h, w = features.shape
    k = rois.shape[0]
    if k == 0:
        return features.new_zeros(0, c, ph, pw)
    # coordinates and weights at least in float32 (bfloat16 would move boxes by pixels)
    r = rois.detach().to(torch.promote_types(features.dtype, torch.float32))
    off = 0.5 if aligned else 0.0
    x1, y1 = r[:, 1] * spatial_scale - off, r[:, 2] * spatial_scale - off
    x2, y2 = r[:, 3] * spatial_scale - off, r[:, 4] * spatial_scale - off
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    bin_h, bin_w = rh / ph, rw / pw
    if sampling_ratio > 0:
        gy = gx = torch.full((k,), sampling_ratio, dtype=torch.long, device=r.device)
    else:
        gy, gx = torch.ceil(bin_h).clamp(min=0).long(), torch.ceil(bin_w).clamp(min=0).long()
    y0, hs = _window(torch.minimum(y1, y1 + rh), torch.maximum(y1, y1 + rh), h)
    x0, ws = _window(torch.minimum(x1, x1 + rw), torch.maximum(x1, x1 + rw), w)
    batch = r[:, 0].long()
    channels_last = features.permute(0, 2, 3, 1)  # (B, H, W, C)

    def chunk(idx: torch.Tensor) -> torch.Tensor:
        n = idx.numel()
        hmax, wmax = int(hs[idx].max()), int(ws[idx].max())
        if 2 * hmax * wmax >= h * w:  # windows near the whole map: one matmul per image
            hmax, wmax = h, w
            zero = torch.zeros_like(y0[idx])
            wy = _axis_weights(y1[idx], bin_h[idx], gy[idx], ph, zero, h, h).to(
                features.dtype
            )  # (n, P, H)
            wx = _axis_weights(x1[idx], bin_w[idx], gx[idx], pw, zero, w, w).to(
                features.dtype
            )  # (n, Q, W)
            parts, order = [], []
            for b in torch.unique(batch[idx]).tolist():
                sel = torch.nonzero(batch[idx] == b).flatten()
                parts.append(wy[sel].reshape(-1, h) @ channels_last[b].reshape(h, w * c))
                order.append(sel)
            t = torch.cat(parts).reshape(n, ph, w, c)[torch.argsort(torch.cat(order))]
        else:  # each RoI's window of rows and columns
            wy = _axis_weights(y1[idx], bin_h[idx], gy[idx], ph, y0[idx], hmax, h).to(
                features.dtype
            )  # (n, P, hmax)
            wx = _axis_weights(x1[idx], bin_w[idx], gx[idx], pw, x0[idx], wmax, w).to(
                features.dtype
            )  # (n, Q, wmax)
            rows = (y0[idx, None] + torch.arange(hmax, device=r.device)).clamp(max=h - 1)
            cols = (x0[idx, None] + torch.arange(wmax, device=r.device)).clamp(max=w - 1)
            win = channels_last[batch[idx, None, None], rows[:, :, None], cols[:, None, :]]
            t = torch.bmm(wy, win.reshape(n, hmax, wmax * c)).reshape(n, ph, wmax, c)
        t = t.transpose(1, 2).reshape(n, wmax, ph * c)
        return torch.bmm(wx, t).reshape(n, pw, ph, c).permute(0, 3, 2, 1)  # (n, C, P, Q)

    if k * int(hs.max()) * int(ws.max()) * c <= _BUDGET:
        return chunk(torch.arange(k, device=r.device))
    # RoIs of similar window sizes together, each chunk within the memory budget
    order = torch.argsort(hs * ws)
    parts, start = [], 0
    while start < k:
        rest = order[start:]
        cost = (
            torch.arange(1, rest.numel() + 1, device=r.device)
            * hs[rest].cummax(0).values
            * ws[rest].cummax(0).values
            * c
        )
        n = max(1, int((cost <= _BUDGET).sum()))
        parts.append(chunk(rest[:n]))
        start += n
    return torch.cat(parts)[torch.argsort(order)]


class RoIAlign(nn.Module):
    """`roi_align` as a module: forward(features (B, C, H, W), rois (K, 5)) -> (K, C, P, Q)."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int = 2,
        aligned: bool = True,
    ):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_align(
            features, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
