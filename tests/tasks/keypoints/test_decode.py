"""Greedy NMS equals a plain Python greedy reference; detect's threshold, border and top k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perpixel.tasks.keypoints.decode import detect, nms


def nms_bruteforce(heat: np.ndarray, radius: int) -> np.ndarray:
    """Greedy NMS of (H, W): by descending score, ties lower flat index first; keep a positive
    pixel unless a kept one is within Chebyshev distance `radius`."""
    h, w = heat.shape
    flat = heat.ravel()
    order = np.lexsort((np.arange(flat.size), -flat))
    keep = np.zeros((h, w), bool)
    for i in order:
        if flat[i] <= 0:
            break
        y, x = divmod(int(i), w)
        if not keep[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].any():
            keep[y, x] = True
    return keep


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4])
def test_nms_equals_greedy_with_ties(radius):
    g = torch.Generator().manual_seed(radius)
    for levels in (3, 6, 1000):
        heat = (
            torch.randint(0, levels, (4, 23, 31), generator=g).float() / levels
        )  # many ties, zeros
        keep = nms(heat, radius)
        assert keep.shape == heat.shape and keep.dtype == torch.bool
        for b in range(4):
            expect = nms_bruteforce(heat[b].numpy(), radius)
            assert np.array_equal(keep[b].numpy(), expect), (levels, b)
        assert not keep[heat == 0].any()


def test_nms_on_smooth_maps_and_plateaus():
    g = torch.Generator().manual_seed(0)
    heat = torch.nn.functional.avg_pool2d(torch.rand(3, 1, 40, 40, generator=g), 5, 1, 2)[:, 0]
    heat[1] = 0.5  # one plateau: greedy keeps a lattice from the top-left corner
    heat[2, :, :] = torch.linspace(0, 1, 40)  # a ramp: the slowest case for the iteration
    keep = nms(heat, 3)
    for b in range(3):
        assert np.array_equal(keep[b].numpy(), nms_bruteforce(heat[b].numpy(), 3))
    assert keep[1].sum() == 10 * 10 and keep[1, 0, 0] and keep[1, 4, 4]


def test_detect_threshold_border_top_k():
    heat = torch.zeros(2, 32, 40)
    heat[0, 10, 12] = 0.9
    heat[0, 11, 13] = 0.5  # suppressed by (10, 12)
    heat[0, 20, 30] = 0.3
    heat[0, 25, 8] = 0.01  # under the threshold
    heat[0, 2, 20] = 0.95  # in the border
    heat[0, 16, 5] = 0.3  # tie with (20, 30): lower flat index first
    heat[1, 5, 5] = 0.2
    (kp, sc), (kp1, sc1) = detect(heat, radius=4, threshold=0.015, border=4)
    assert kp.tolist() == [[12.0, 10.0], [5.0, 16.0], [30.0, 20.0]]
    assert torch.allclose(sc, torch.tensor([0.9, 0.3, 0.3]))
    assert kp1.tolist() == [[5.0, 5.0]] and kp.dtype == torch.float32
    # border 0 keeps the edge point; a lower threshold keeps the weak one; top_k cuts
    kp, sc = detect(heat, radius=4, threshold=0.005, border=0)[0]
    assert kp[0].tolist() == [20.0, 2.0] and len(kp) == 5 and [8.0, 25.0] in kp.tolist()
    kp, sc = detect(heat, radius=4, threshold=0.005, border=0, top_k=2)[0]
    assert kp.tolist() == [[20.0, 2.0], [12.0, 10.0]]
    # threshold between two neighbours; NMS between them; radius 0 keeps both
    heat2 = torch.zeros(1, 32, 40)
    heat2[0, 10, 10], heat2[0, 11, 11] = 0.01, 0.009
    assert len(detect(heat2, threshold=0.0095)[0][0]) == 1
    assert len(detect(heat2, threshold=0.0)[0][0]) == 1
    assert len(detect(heat2, radius=0, threshold=0.0)[0][0]) == 2
