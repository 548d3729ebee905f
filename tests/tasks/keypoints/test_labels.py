"""Cell labels: exact round trip, one random point per cell, outside points, heat map."""

from __future__ import annotations

import pytest
import torch

from perpixel.errors import DataError
from perpixel.tasks.keypoints.labels import cell_mask, cells_to_points, heatmap, points_to_cells

SHAPE = (48, 64)


def _sorted(p):
    return p[torch.argsort(p[:, 1] * 1000 + p[:, 0])]


def _one_per_cell(g, keep=0.6):
    hc, wc = SHAPE[0] // 8, SHAPE[1] // 8
    cells = torch.nonzero(torch.rand(hc, wc, generator=g) < keep)
    offset = torch.randint(0, 8, (len(cells), 2), generator=g)
    return torch.stack([cells[:, 1] * 8 + offset[:, 0], cells[:, 0] * 8 + offset[:, 1]], -1).float()


def test_round_trip_is_exact():
    g = torch.Generator().manual_seed(0)
    points = [_one_per_cell(g), _one_per_cell(g), torch.zeros(0, 2)]
    labels = points_to_cells(points, SHAPE)
    assert labels.shape == (3, 6, 8) and labels.dtype == torch.long
    assert labels.min() >= 0 and labels.max() <= 64
    assert (labels[2] == 64).all()
    back = cells_to_points(labels)
    assert len(back) == 3
    for p, q in zip(points, back, strict=True):
        assert torch.equal(_sorted(p), _sorted(q))


def test_channel_order_and_rounding():
    # pixel (row 10, col 21): cell (1, 2), channel (10 % 8) * 8 + 21 % 8 = 21
    labels = points_to_cells([torch.tensor([[20.6, 9.7]])], SHAPE)
    assert labels[0, 1, 2] == 21 and (labels == 64).sum() == 6 * 8 - 1


def test_several_points_in_a_cell_keep_one_at_random():
    p = torch.tensor([[1.0, 2.0], [5.0, 6.0], [3.0, 3.0], [30.0, 30.0]])  # 3 in cell (0, 0)
    channels = {2 * 8 + 1, 6 * 8 + 5, 3 * 8 + 3}
    seen = set()
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        labels = points_to_cells([p], SHAPE, g)[0]
        assert (labels < 64).sum() == 2 and labels[3, 3] == 6 * 8 + 6
        seen.add(int(labels[0, 0]))
        again = points_to_cells([p], SHAPE, torch.Generator().manual_seed(seed))[0]
        assert torch.equal(labels, again)
    assert seen == channels


def test_outside_points_are_ignored():
    h, w = SHAPE
    p = torch.tensor([[-0.6, 4.0], [4.0, -0.51], [w - 0.5, 4.0], [4.0, h - 0.4], [-0.5, h - 0.51]])
    labels = points_to_cells([p], SHAPE)[0]
    assert (labels < 64).sum() == 1 and labels[-1, 0] == 7 * 8 + 0


def test_bad_shape():
    with pytest.raises(DataError, match="multiple of 8"):
        points_to_cells([torch.zeros(0, 2)], (50, 64))


def test_cell_mask_needs_every_pixel():
    valid = torch.ones(2, 1, *SHAPE)
    valid[0, 0, 9, 17] = 0  # cell (1, 2)
    valid[1, :, :, 60:] = 0  # last column of cells
    m = cell_mask(valid)
    assert m.shape == (2, 6, 8) and m.dtype == torch.bool
    assert (~m[0]).nonzero().tolist() == [[1, 2]]
    assert (~m[1]).sum() == 6 and not m[1, :, 7].any()
    assert torch.equal(cell_mask(valid.bool()), m)


def test_heatmap_sums_to_one_minus_dustbin():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 65, 6, 8, generator=g) * 3
    heat = heatmap(logits)
    assert heat.shape == (2, 48, 64) and heat.dtype == torch.float32
    per_cell = heat.view(2, 6, 8, 8, 8).sum((2, 4))
    assert torch.allclose(per_cell, 1 - logits.softmax(1)[:, 64], atol=1e-6)
    # position: channel k of cell (i, j) is pixel (8i + k // 8, 8j + k % 8)
    one = torch.full((1, 65, 6, 8), -30.0)
    one[0, 64] = 30.0
    one[0, 21, 1, 2] = 60.0
    assert heatmap(one)[0].argmax().item() == (8 + 21 // 8) * 64 + 16 + 21 % 8
    low = heatmap(logits.bfloat16())
    assert low.dtype == torch.float32
    assert torch.allclose(low, heatmap(logits.bfloat16().float()))
