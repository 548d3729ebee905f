"""Class-balanced cross-entropy for edge detection, with deep supervision.

An edge detector scores every pixel with a logit s = log P(edge) / P(not edge). Targets are
soft: `edges` (B, 1, H, W) = c / N, the fraction of the image's N annotators that marked the
pixel; a negative target (`IGNORE`, e.g. crop padding) marks a pixel that is not scored.

Balanced cross-entropy of one annotation y in {0, 1} (the textbook's form):

    l(s, y) = -(1 - beta) * y * log sigma(s) - beta * (1 - y) * log(1 - sigma(s))

with log sigma(s) = s - log(1 + exp s) and log(1 - sigma(s)) = -log(1 + exp s).
Note: the printed textbook formula has a sign slip (it writes s + log(1 + exp s) for
log sigma(s)), and it swaps the definitions of precision and recall; everywhere in perpixel
precision = TP / (TP + FP) and recall = TP / (TP + FN).

`l` is linear in y, so the mean of l over an image's N annotations equals l evaluated at
the soft target c / N: we train on the fraction map directly, which *is* "every annotation
counts", at the cost of one forward pass. Both log terms come from `F.logsigmoid`, stable
for any logit (no inf/nan at +-100).

Loss of an image = mean over its scored pixels; loss of a batch = mean over its images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = -1.0  # target value of pixels that are not scored (padding)
BALANCE = ("dataset", "image", "none")


def edge_fraction(dataset) -> float:
    """beta = E / T: edge pixels over all annotations of a dataset's images.

    Sum over images and annotators of the marked pixels, over the sum of (scored pixels x
    annotators). Uses `dataset.edge_maps()` (un-augmented (H, W) fraction maps and their
    annotator counts) when the dataset has it, else its items' `edges` and `annotators`.
    """
    if hasattr(dataset, "edge_maps"):
        maps: Iterable = dataset.edge_maps()
    else:
        maps = ((dataset[i]["edges"], dataset[i]["annotators"]) for i in range(len(dataset)))
    marked, total = 0.0, 0.0
    for edges, n in maps:
        e = np.asarray(edges, dtype=np.float64)
        valid = e >= 0
        marked += float(e[valid].sum()) * int(n)
        total += float(valid.sum()) * int(n)
    if total == 0:
        raise ValueError("edge_fraction: the dataset has no scored pixels")
    return marked / total


def consensus_target(
    edges: torch.Tensor, annotators: torch.Tensor | Sequence[int] | None, k: float
) -> torch.Tensor:
    """Hard targets from soft ones: 1 where at least k annotators marked the pixel, IGNORE where
    1..k-1 did, 0 where none did (padding stays IGNORE).

    An integer k counts annotators (needs `annotators` (B,)); a float k in (0, 1) is a
    fraction of them (HED's `round(gt)` labels are k = 0.5).
    """
    if isinstance(k, float) and 0 < k < 1:
        marked = edges >= k - 1e-6
    else:
        if annotators is None:
            raise ValueError("consensus with an annotator count needs the annotators per image")
        n = torch.as_tensor(annotators, device=edges.device, dtype=edges.dtype)
        counts = (edges * n.view(-1, *[1] * (edges.dim() - 1))).round()
        marked = counts >= int(k)
    out = torch.where(marked, 1.0, torch.where(edges > 0, IGNORE, 0.0)).to(edges.dtype)
    return torch.where(edges < 0, IGNORE, out)


def balanced_bce(
    logits: torch.Tensor,
    target: torch.Tensor,
    balance: str = "dataset",
    beta: float | None = None,
    pixel_reduction: str = "mean",
) -> torch.Tensor:
    """Class-balanced binary cross-entropy on logits, one value per image.

    Args:
        logits: (B, 1, H, W) edge logits.
        target: (B, 1, H, W) edge fraction in [0, 1]; negative = not scored.
        balance: "dataset": weight (1 - beta) on edges, beta on non-edges (beta = E / T of
            the training set, see `edge_fraction`); "image": HED's weights, edges by the
            image's non-edge fraction |Y-| / |Y|, non-edges by its edge fraction |Y+| / |Y|
            (soft counts); "none": plain cross-entropy.
        pixel_reduction: "mean" over the scored pixels, or "sum" (HED's Caffe loss).

    Returns:
        (B,) loss of each image.
    """
    s = logits.float().flatten(1)
    t = target.float().flatten(1)
    valid = (t >= 0).float()
    y = t.clamp(min=0) * valid
    if balance == "dataset":
        if beta is None:
            raise ValueError("balance='dataset' needs beta (see edge_fraction)")
        w_pos = torch.full_like(s[:, :1], 1.0 - beta)
        w_neg = torch.full_like(s[:, :1], beta)
    elif balance == "image":
        n = valid.sum(1, keepdim=True).clamp(min=1)
        n_pos = y.sum(1, keepdim=True)
        w_pos, w_neg = (n - n_pos) / n, n_pos / n
    elif balance == "none":
        w_pos = w_neg = torch.ones_like(s[:, :1])
    else:
        raise ValueError(f"unknown balance {balance!r}: one of {BALANCE}")
    # -[w+ y log sigma(s) + w- (1 - y) log(1 - sigma(s))], log(1 - sigma(s)) = log sigma(-s)
    per_pixel = -(w_pos * y * F.logsigmoid(s) + w_neg * (valid - y) * F.logsigmoid(-s))
    total = per_pixel.sum(1)
    if pixel_reduction == "sum":
        return total
    if pixel_reduction == "mean":
        return total / valid.sum(1).clamp(min=1)
    raise ValueError(f"unknown pixel_reduction {pixel_reduction!r}: mean or sum")


class EdgeLoss(nn.Module):
    """Deep-supervised balanced cross-entropy: fused_weight * L(fused) + sum_i w_i L(side_i).

    `outputs` is a (B, 1, H, W) logit map or a dict {"fused": (B, 1, H, W), "sides": [...]}
    (every map at the target's size). See `balanced_bce` for `balance`, `beta` and
    `pixel_reduction`; `consensus` = k turns the soft targets into hard ones
    (`consensus_target`), None keeps the fraction c / N.
    """

    def __init__(
        self,
        balance: str = "dataset",
        beta: float | None = None,
        consensus: float | None = None,
        side_weights: float | Sequence[float] = 1.0,
        fused_weight: float = 1.0,
        pixel_reduction: str = "mean",
    ):
        super().__init__()
        if balance not in BALANCE:
            raise ValueError(f"unknown balance {balance!r}: one of {BALANCE}")
        if balance == "dataset" and beta is None:
            raise ValueError("balance='dataset' needs beta (see edge_fraction)")
        if beta is not None and not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if pixel_reduction not in ("mean", "sum"):
            raise ValueError(f"unknown pixel_reduction {pixel_reduction!r}: mean or sum")
        self.balance, self.beta, self.consensus = balance, beta, consensus
        self.side_weights, self.fused_weight = side_weights, float(fused_weight)
        self.pixel_reduction = pixel_reduction

    def target(self, edges: torch.Tensor, annotators=None) -> torch.Tensor:
        """The training target for soft `edges` (B, 1, H, W): soft, or hard with consensus."""
        if self.consensus is None:
            return edges
        return consensus_target(edges, annotators, self.consensus)

    def map_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of one logit map against a prepared target (mean over images)."""
        return balanced_bce(logits, target, self.balance, self.beta, self.pixel_reduction).mean()

    def terms(
        self, outputs: torch.Tensor | dict, edges: torch.Tensor, annotators=None
    ) -> dict[str, torch.Tensor]:
        """{"fused": loss, "side1": loss, ...}: each map's loss, unweighted."""
        target = self.target(edges, annotators)
        if isinstance(outputs, torch.Tensor):
            return {"fused": self.map_loss(outputs, target)}
        out = {"fused": self.map_loss(outputs["fused"], target)}
        for i, side in enumerate(outputs.get("sides", ()), 1):
            out[f"side{i}"] = self.map_loss(side, target)
        return out

    def forward(
        self, outputs: torch.Tensor | dict, edges: torch.Tensor, annotators=None
    ) -> torch.Tensor:
        """Weighted sum of `terms` (scalar)."""
        return self.combine(self.terms(outputs, edges, annotators))

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """fused_weight * terms["fused"] + sum_i side_weights[i] * terms[f"side{i}"]."""
        nsides = len(terms) - 1
        sw = self.side_weights
        sw = [float(sw)] * nsides if isinstance(sw, (int, float)) else [float(w) for w in sw]
        if len(sw) != nsides:
            raise ValueError(f"{len(sw)} side weights for {nsides} side outputs")
        total = self.fused_weight * terms["fused"]
        for i, w in enumerate(sw, 1):
            total = total + w * terms[f"side{i}"]
        return total
