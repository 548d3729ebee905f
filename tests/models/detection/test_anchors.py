"""Tests for perpixel.models.detection.anchors."""

import pytest
import torch

from perpixel.models.detection.anchors import AnchorGenerator, anchor_grid, cell_anchors


def test_cell_anchors_sizes_and_ratios():
    cell = cell_anchors([32, 64], [0.5, 1.0, 2.0])
    assert cell.shape == (6, 4)
    w, h = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    torch.testing.assert_close(w * h, torch.tensor([32.0**2] * 3 + [64.0**2] * 3))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1.0, 2.0] * 2))
    torch.testing.assert_close(cell[:, :2] + cell[:, 2:], torch.zeros(6, 2))  # centred


def test_grid_count_positions_and_order():
    cell = cell_anchors([16, 40], [1.0, 2.0])
    grid = anchor_grid(cell, 8, (3, 5))
    assert grid.shape == (3 * 5 * 4, 4)
    centres = (grid[:, :2] + grid[:, 2:]) / 2
    # order (y, x, anchor): entry ((y * 5) + x) * 4 + a
    for y in range(3):
        for x in range(5):
            for a in range(4):
                k = (y * 5 + x) * 4 + a
                torch.testing.assert_close(centres[k], torch.tensor([(x + 0.5) * 8, (y + 0.5) * 8]))
                torch.testing.assert_close(grid[k] - torch.cat([centres[k], centres[k]]), cell[a])


def test_generator_levels():
    gen = AnchorGenerator([[32], [64]], [0.5, 1.0, 2.0], [8, 16], offset=0.0)
    assert gen.num_anchors == [3, 3]
    a8, a16 = gen([(4, 4), (2, 2)])
    assert a8.shape == (48, 4) and a16.shape == (12, 4)
    torch.testing.assert_close((a16[3, :2] + a16[3, 2:]) / 2, torch.tensor([16.0, 0.0]))
    with pytest.raises(ValueError):
        AnchorGenerator([[32]], [1.0], [8, 16])
