"""Tests for perpixel.tasks.edges.loss: balanced cross-entropy, consensus, deep supervision."""

import math

import numpy as np
import pytest
import torch

from perpixel.tasks.edges.loss import (
    IGNORE,
    EdgeLoss,
    balanced_bce,
    consensus_target,
    edge_fraction,
)

LOG2 = math.log(2)


def t4(values) -> torch.Tensor:
    """A (1, 1, 2, 2) tensor from 4 values, row by row."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 2, 2)


def test_hand_computed_2x2_at_zero_logits():
    # N = 2 annotators: pixel a marked by both, b by one, c and d by none; beta = 1/4.
    # With s = 0, -log sigma(0) = -log(1 - sigma(0)) = log 2, so per pixel
    #   a: (1 - b) * 1 * log2            = 0.75  log2
    #   b: (1 - b) * .5 + b * .5 (log2)  = 0.5   log2
    #   c, d: b * 1 * log2               = 0.25  log2 each
    # mean over the 4 pixels = 1.75 / 4 log2 = 0.4375 log2.
    loss = EdgeLoss("dataset", beta=0.25)(t4([0, 0, 0, 0]), t4([1, 0.5, 0, 0]))
    assert loss.item() == pytest.approx(0.4375 * LOG2, rel=1e-6)


def test_soft_target_equals_mean_over_annotations():
    # The loss is linear in the target: averaging the binary losses of the N annotations
    # equals the loss of their mean c / N. Check against the explicit formula per annotation.
    s = [2.0, -1.0, 0.5, -3.0]
    annotations = [[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]]  # 3 annotators
    beta = 0.3

    def log_sigmoid(x):
        return x - math.log(1 + math.exp(x))  # the correct sign (the textbook prints +)

    explicit = 0.0
    for y in annotations:
        for si, yi in zip(s, y, strict=True):
            explicit += -(1 - beta) * yi * log_sigmoid(si) - beta * (1 - yi) * (
                -math.log(1 + math.exp(si))
            )
    explicit /= len(annotations) * len(s)
    fraction = np.mean(annotations, axis=0)
    loss = EdgeLoss("dataset", beta=beta)(t4(s), t4(fraction))
    assert loss.item() == pytest.approx(explicit, rel=1e-6)


def test_edge_fraction_counts_every_annotation():
    # image 1: 2 annotators, 4 pixels, marks 2 + 1 -> 3 of 8 annotation pixels
    # image 2: 3 annotators, 2 pixels, marks 1 + 0 + 0 -> 1 of 6; beta = 4 / 14
    data = [
        {"edges": t4([1, 0.5, 0, 0])[0], "annotators": 2},
        {"edges": torch.tensor([[[1 / 3, 0.0]]]), "annotators": 3},
    ]
    assert edge_fraction(data) == pytest.approx(4 / 14)

    class WithMaps:
        def edge_maps(self):
            yield np.array([[1.0, IGNORE]]), 1  # the ignored pixel is not counted
            yield np.array([[0.0, 0.0]]), 1

    assert edge_fraction(WithMaps()) == pytest.approx(1 / 3)


def test_weights_favour_rare_edges():
    # a confident miss on an edge costs (1 - beta) / beta times a miss on a non-edge
    beta = 0.1
    miss_edge = balanced_bce(t4([-5, 0, 0, 0]), t4([1, IGNORE, IGNORE, IGNORE]), beta=beta)
    miss_bg = balanced_bce(t4([5, 0, 0, 0]), t4([0, IGNORE, IGNORE, IGNORE]), beta=beta)
    assert (miss_edge / miss_bg).item() == pytest.approx(0.9 / 0.1, rel=1e-5)


def test_ignored_pixels_do_not_count():
    logits = t4([3.0, -2.0, 50.0, -50.0])
    full = balanced_bce(logits[..., :1, :], t4([1, 0, 0, 0])[..., :1, :], beta=0.2)
    # bottom row ignored: whatever the logits there, the loss is the top row's mean
    part = balanced_bce(logits, t4([1, 0, IGNORE, IGNORE]), beta=0.2)
    assert part.item() == pytest.approx(full.item(), rel=1e-6)
    logits.requires_grad_(True)
    balanced_bce(logits, t4([1, 0, IGNORE, IGNORE]), beta=0.2).sum().backward()
    assert logits.grad[0, 0, 1].abs().sum() == 0


def test_per_image_balance_is_heds():
    # one edge pixel of 4: edges weighted by |Y-|/|Y| = 3/4, non-edges by |Y+|/|Y| = 1/4
    s = t4([0, 0, 0, 0])
    loss = balanced_bce(s, t4([1, 0, 0, 0]), balance="image")
    assert loss.item() == pytest.approx((0.75 + 3 * 0.25) / 4 * LOG2, rel=1e-6)
    total = balanced_bce(s, t4([1, 0, 0, 0]), balance="image", pixel_reduction="sum")
    assert total.item() == pytest.approx((0.75 + 3 * 0.25) * LOG2, rel=1e-6)
    # per image, not per batch: two images with different edge fractions
    two = balanced_bce(torch.cat([s, s]), torch.cat([t4([1, 0, 0, 0]), t4([1, 1, 0, 0])]), "image")
    assert two[1].item() == pytest.approx((2 * 0.5 + 2 * 0.5) / 4 * LOG2, rel=1e-6)
    # an image without edges: positives weigh 1, negatives 0 -> loss 0
    assert balanced_bce(s, t4([0, 0, 0, 0]), balance="image").item() == 0


def test_unbalanced_is_plain_bce():
    g = torch.Generator().manual_seed(0)
    s, y = torch.randn(2, 1, 5, 6, generator=g), torch.rand(2, 1, 5, 6, generator=g)
    ours = balanced_bce(s, y, balance="none").mean()
    ref = torch.nn.functional.binary_cross_entropy_with_logits(s, y)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_consensus_targets():
    # 4 annotators: counts 0, 1, 2, 4; k = 2 -> 0, ignore, 1, 1
    edges = t4([0, 0.25, 0.5, 1.0])
    hard = consensus_target(edges, torch.tensor([4]), 2)
    assert hard.flatten().tolist() == [0, IGNORE, 1, 1]
    assert consensus_target(edges, [4], 1).flatten().tolist() == [0, 1, 1, 1]
    # a fraction: at least half of the annotators
    assert consensus_target(edges, None, 0.5).flatten().tolist() == [0, IGNORE, 1, 1]
    assert consensus_target(t4([IGNORE, 0, 1, 1]), [4], 2).flatten()[0] == IGNORE
    with pytest.raises(ValueError, match="annotators"):
        consensus_target(edges, None, 2)
    # the loss with consensus uses the hard targets and ignores the weak pixels
    s = t4([1.0, -7.0, 2.0, 0.0])
    a = EdgeLoss("dataset", beta=0.2, consensus=2)(s, edges, torch.tensor([4]))
    b = EdgeLoss("dataset", beta=0.2)(s, t4([0, IGNORE, 1, 1]))
    assert a.item() == pytest.approx(b.item())


@pytest.mark.parametrize("balance", ["dataset", "image", "none"])
def test_extreme_logits_are_finite(balance):
    s = t4([100.0, -100.0, 100.0, -100.0]).requires_grad_(True)
    y = t4([1.0, 0.0, 0.0, 1.0])  # two right, two confidently wrong
    loss = EdgeLoss(balance, beta=0.1)(s, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    expected = {"dataset": 0.1 * 100 + 0.9 * 100, "image": 0.5 * 100 + 0.5 * 100, "none": 200}
    assert loss.item() == pytest.approx(expected[balance] / 4, rel=1e-4)


def test_deep_supervision_sums_sides_and_fused():
    g = torch.Generator().manual_seed(1)
    y = (torch.rand(2, 1, 8, 8, generator=g) > 0.8).float()
    outs = {
        "fused": torch.randn(2, 1, 8, 8, generator=g),
        "sides": [torch.randn(2, 1, 8, 8, generator=g) for _ in range(3)],
    }
    loss = EdgeLoss("dataset", beta=0.2)
    terms = loss.terms(outs, y)
    assert set(terms) == {"fused", "side1", "side2", "side3"}
    assert loss(outs, y).item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
    weighted = EdgeLoss("dataset", beta=0.2, side_weights=[0.5, 0, 2], fused_weight=3)(outs, y)
    expected = 3 * terms["fused"] + 0.5 * terms["side1"] + 2 * terms["side3"]
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)
    # a plain tensor is the fused output alone
    assert loss(outs["fused"], y).item() == pytest.approx(terms["fused"].item())
    with pytest.raises(ValueError, match="side weights"):
        EdgeLoss("dataset", beta=0.2, side_weights=[1, 1])(outs, y)


def test_bad_options():
    with pytest.raises(ValueError, match="beta"):
        EdgeLoss("dataset")
    with pytest.raises(ValueError, match="balance"):
        EdgeLoss("sometimes", beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        EdgeLoss("dataset", beta=1.5)
