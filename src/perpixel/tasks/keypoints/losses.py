"""SuperPoint's losses (DeTone et al. 2018, section 3.4): the detector's 65-way cell
cross-entropy and the descriptors' hinge loss over all pairs of cells of an image pair.

The masking, the averaging and the radius of a positive pair follow rpautrat/SuperPoint,
superpoint/models/utils.py (`detector_loss`, `descriptor_loss`, commit 1411bbd); the hinge is
the paper's, on the dot products themselves (the reference also passes them through a ReLU and
L2-normalises the (HcWc)^2 matrix along both axes, which the paper does not). All in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry.linalg import transform_points


def detector_loss(
    logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of logits (B, 65, Hc, Wc) against labels (B, Hc, Wc) long in 0..64 (64:
    no point), averaged over the cells where valid (B, Hc, Wc) bool is True (all when None).
    Returns a float32 scalar, 0 when no cell is valid."""
    ce = F.cross_entropy(logits.float(), labels.long(), reduction="none")
    if valid is None:
        return ce.mean()
    valid = valid.to(ce.dtype)
    return (ce * valid).sum() / valid.sum().clamp(min=1)


def cell_centres(hc: int, wc: int, cell: int = 8, device=None) -> torch.Tensor:
    """(Hc * Wc, 2) xy pixel centres of the cells, row by row: cell (i, j) at
    (cell * j + (cell - 1) / 2, cell * i + (cell - 1) / 2)."""
    i, j = torch.meshgrid(
        torch.arange(hc, device=device), torch.arange(wc, device=device), indexing="ij"
    )
    return torch.stack([j, i], -1).reshape(-1, 2).float() * cell + (cell - 1) / 2


def cell_correspondences(
    H: torch.Tensor, hc: int, wc: int, cell: int = 8, radius: float | None = None
) -> torch.Tensor:
    """s (B, Hc * Wc, Hc * Wc) bool: s[b, p, q] when the centre of cell p of image a, mapped
    by H (B, 3, 3) (a -> b, pixels), lies within `radius` (Euclidean, <=) of the centre of cell
    q of image b. `radius` None: cell - 0.5, as rpautrat/SuperPoint (the paper writes <= 8,
    which on the 8-pixel grid of centres also pairs a cell with its four neighbours)."""
    radius = cell - 0.5 if radius is None else radius
    centres = cell_centres(hc, wc, cell, H.device)
    H = H.float().reshape(-1, 3, 3)
    warped = transform_points(H, centres.expand(len(H), -1, -1))  # (B, N, 2)
    # exact differences, not the matrix-product shortcut: distances on the grid stay exact
    dist = torch.cdist(warped, centres[None], compute_mode="donot_use_mm_for_euclid_dist")
    return dist <= radius


def descriptor_loss_terms(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    H: torch.Tensor,
    valid_b: torch.Tensor | None = None,
    pos_margin: float = 1.0,
    neg_margin: float = 0.2,
    lambda_d: float = 250.0,
    cell: int = 8,
    radius: float | None = None,
) -> dict[str, torch.Tensor]:
    """SuperPoint's descriptor hinge loss and its two parts.

    desc_a, desc_b (B, D, Hc, Wc) descriptors of images a and b (L2-normalised here again);
    H (B, 3, 3) maps pixels of a to b; valid_b (B, Hc, Wc) bool: the cells of b that count
    (None: all). For every pair (cell p of a, cell q of b) with s = `cell_correspondences`:
        l = lambda_d * s * max(0, pos_margin - d_p . d_q) + (1 - s) * max(0, d_p . d_q - neg_margin)
    summed over the pairs whose q is valid and divided by (number of valid b cells in the
    batch) * Hc * Wc, as the reference (= the paper's 1 / (HcWc)^2 when all are valid).

    Returns {"loss", "positive_dist" (the lambda_d * s part), "negative_dist" (the rest)},
    float32 scalars with loss = positive_dist + negative_dist.
    """
    b, d, hc, wc = desc_a.shape
    if desc_b.shape != desc_a.shape:
        raise ValueError(f"descriptor maps differ: {tuple(desc_a.shape)} != {tuple(desc_b.shape)}")
    da = F.normalize(desc_a.float().reshape(b, d, -1), dim=1)
    db = F.normalize(desc_b.float().reshape(b, d, -1), dim=1)
    dots = da.transpose(1, 2) @ db  # (B, N_a, N_b)
    s = cell_correspondences(H, hc, wc, cell, radius).to(dots.dtype)
    positive = lambda_d * s * (pos_margin - dots).clamp(min=0)
    negative = (1 - s) * (dots - neg_margin).clamp(min=0)
    if valid_b is None:
        valid = torch.ones(b, 1, hc * wc, device=dots.device)
    else:
        valid = valid_b.reshape(b, 1, hc * wc).to(dots.dtype)
    norm = (valid.sum() * (hc * wc)).clamp(min=1)
    terms = {
        "positive_dist": (positive * valid).sum() / norm,
        "negative_dist": (negative * valid).sum() / norm,
    }
    return {"loss": terms["positive_dist"] + terms["negative_dist"], **terms}


def descriptor_loss(
    desc_a: torch.Tensor,
    desc_b: torch.Tensor,
    H: torch.Tensor,
    valid_b: torch.Tensor | None = None,
    pos_margin: float = 1.0,
    neg_margin: float = 0.2,
    lambda_d: float = 250.0,
    cell: int = 8,
    radius: float | None = None,
) -> torch.Tensor:
    """The float32 scalar loss of `descriptor_loss_terms` (see there)."""
    return descriptor_loss_terms(
        desc_a, desc_b, H, valid_b, pos_margin, neg_margin, lambda_d, cell, radius
    )["loss"]
