"""Tests for perpixel.tasks.keypoints.losses."""

import pytest
import torch
import torch.nn.functional as F

from perpixel.tasks.keypoints.losses import (
    cell_centres,
    cell_correspondences,
    descriptor_loss,
    descriptor_loss_terms,
    detector_loss,
)


def translation(tx: float, ty: float = 0.0) -> torch.Tensor:
    return torch.tensor([[[1.0, 0, tx], [0, 1, ty], [0, 0, 1]]])


# ---------------------------------------------------------------- detector


def test_detector_loss_is_the_cell_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 65, 3, 4, generator=g)
    labels = torch.randint(0, 65, (2, 3, 4), generator=g)
    torch.testing.assert_close(detector_loss(logits, labels), F.cross_entropy(logits, labels))
    # a hand case: uniform logits cost log(65) everywhere
    assert detector_loss(torch.zeros(1, 65, 1, 1), torch.tensor([[[64]]])).item() == (
        pytest.approx(torch.log(torch.tensor(65.0)).item())
    )


def test_detector_loss_ignores_invalid_cells():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 65, 3, 4, generator=g)
    labels = torch.randint(0, 65, (2, 3, 4), generator=g)
    valid = torch.rand(2, 3, 4, generator=g) > 0.5
    loss = detector_loss(logits, labels, valid)
    cells = logits.permute(0, 2, 3, 1)[valid]  # (n, 65)
    torch.testing.assert_close(loss, F.cross_entropy(cells, labels[valid]))
    changed = logits.clone()
    changed.permute(0, 2, 3, 1)[~valid] = 100.0 * torch.randn(int((~valid).sum()), 65)
    torch.testing.assert_close(detector_loss(changed, labels, valid), loss)
    assert detector_loss(logits, labels, torch.zeros_like(valid)).item() == 0


def test_detector_loss_is_float32_and_learns():
    logits = torch.randn(1, 65, 2, 2).to(torch.bfloat16).requires_grad_()
    loss = detector_loss(logits, torch.full((1, 2, 2), 64))
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


# ---------------------------------------------------------------- descriptor


def test_cell_centres():
    c = cell_centres(2, 3)
    assert c.tolist()[:4] == [[3.5, 3.5], [11.5, 3.5], [19.5, 3.5], [3.5, 11.5]]
    assert c.shape == (6, 2)


def hand_case():
    """1 x 2 cells, D = 2: a = [(1, 0), (0, 1)], b = [(0.6, 0.8), (1, 0)]."""
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).t().reshape(1, 2, 1, 2)
    b = torch.tensor([[0.6, 0.8], [1.0, 0.0]]).t().reshape(1, 2, 1, 2)
    return a, b


def test_descriptor_loss_by_hand():
    a, b = hand_case()
    # identity: cell centres 8 px apart, so only (0, 0) and (1, 1) are positive pairs
    # dots a.b: (0,0) 0.6, (0,1) 1, (1,0) 0.8, (1,1) 0
    # positives: 250 * (1 - 0.6) + 250 * (1 - 0) = 350; negatives: (1 - 0.2) + (0.8 - 0.2) = 1.4
    t = descriptor_loss_terms(a, b, torch.eye(3)[None])
    assert t["positive_dist"].item() == pytest.approx(350 / 4)
    assert t["negative_dist"].item() == pytest.approx(1.4 / 4)
    assert t["loss"].item() == pytest.approx(351.4 / 4)
    assert descriptor_loss(a, b, torch.eye(3)[None]).item() == pytest.approx(351.4 / 4)
    # other margins and lambda_d: 2 * (0.5 - 0) + (1 - 0.9) = 1.1 (0.6 and 0.8 under 0.9)
    loss = descriptor_loss(a, b, torch.eye(3)[None], pos_margin=0.5, neg_margin=0.9, lambda_d=2)
    assert loss.item() == pytest.approx(1.1 / 4)
    # only b's cell 0 valid: pairs (0,0) 100 and (1,0) 0.6, over 1 valid cell x 2 cells
    valid = torch.tensor([[[True, False]]])
    assert descriptor_loss(a, b, torch.eye(3)[None], valid).item() == pytest.approx(100.6 / 2)
    # un-normalised descriptors are normalised first
    assert descriptor_loss(3 * a, 0.5 * b, torch.eye(3)[None]).item() == pytest.approx(351.4 / 4)


def test_descriptor_loss_follows_the_homography():
    a, b = hand_case()
    # shifted by 8 px, a's cell 0 lands on b's cell 1 and a's cell 1 on nothing:
    # positive (0,1): 250 * (1 - 1) = 0; negatives (0,0) 0.4, (1,0) 0.6, (1,1) 0
    t = descriptor_loss_terms(a, b, translation(8.0))
    assert t["positive_dist"].item() == 0
    assert t["loss"].item() == pytest.approx(1.0 / 4)


def test_correspondences_shift_by_one_cell_under_an_8_pixel_translation():
    hc, wc = 3, 4
    same = cell_correspondences(torch.eye(3)[None], hc, wc)
    assert torch.equal(same[0], torch.eye(hc * wc, dtype=torch.bool))
    right = cell_correspondences(translation(8.0), hc, wc)[0].reshape(hc, wc, hc, wc)
    down = cell_correspondences(translation(0.0, 8.0), hc, wc)[0].reshape(hc, wc, hc, wc)
    for i in range(hc):
        for j in range(wc):
            assert right[i, j].nonzero().tolist() == ([[i, j + 1]] if j + 1 < wc else [])
            assert down[i, j].nonzero().tolist() == ([[i + 1, j]] if i + 1 < hc else [])
    # within 7.5 px: 0.4 px off keeps the pairs; 3 px right pairs with both (3 and 5 px off);
    # 7.6 px right pairs with the right neighbour alone (0.4 px off)
    assert torch.equal(cell_correspondences(translation(0.4, -0.3), hc, wc), same)
    both = cell_correspondences(translation(3.0), hc, wc)[0].reshape(hc, wc, hc, wc)
    assert both[1, 1].nonzero().tolist() == [[1, 1], [1, 2]]
    far = cell_correspondences(translation(7.6), hc, wc)[0].reshape(hc, wc, hc, wc)
    assert torch.equal(far, right)
    # the paper's "<= 8" also pairs each cell with its four neighbours
    wide = cell_correspondences(torch.eye(3)[None], hc, wc, radius=8.0)[0]
    assert wide.reshape(hc, wc, hc * wc)[1, 1].sum() == 5


def test_correspondences_in_a_batch_and_under_scaling():
    H = torch.cat([torch.eye(3)[None], torch.diag(torch.tensor([2.0, 2.0, 1.0]))[None]])
    s = cell_correspondences(H, 2, 4)
    assert s.shape == (2, 8, 8)
    assert torch.equal(s[0], torch.eye(8, dtype=torch.bool))
    # x2 about the origin: cell (0, 0) centre (3.5, 3.5) -> (7, 7), within 7.5 of (11.5, 11.5)
    # (6.36 px) and of (3.5, 3.5) (4.95 px), and (11.5, 3.5) (5.7 px) and (3.5, 11.5)
    assert s[1, 0].nonzero().flatten().tolist() == [0, 1, 4, 5]


def test_descriptor_loss_batch_and_gradients():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 8, 3, 4, generator=g, requires_grad=True)
    b = torch.randn(2, 8, 3, 4, generator=g, requires_grad=True)
    H = torch.cat([translation(8.0), translation(-3.0, 9.0)])
    valid = torch.rand(2, 3, 4, generator=g) > 0.3
    loss = descriptor_loss(a, b, H, valid)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    for x in (a, b):
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the batch pools its pairs: the sum of per-item sums over all valid cells
    sums = [
        descriptor_loss(a[i : i + 1], b[i : i + 1], H[i : i + 1], valid[i : i + 1]) * valid[i].sum()
        for i in range(2)
    ]
    torch.testing.assert_close(loss, sum(sums) / valid.sum())
    with pytest.raises(ValueError, match="differ"):
        descriptor_loss(a, b[:, :4], H)
