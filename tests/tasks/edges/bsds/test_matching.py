"""The benchmark's kernels: thinning (= MATLAB bwmorph thin) and pixel matching (= correspondPixels)."""

import numpy as np
import pytest
from scipy.ndimage import label
from scipy.optimize import linear_sum_assignment

from perpixel.tasks.edges.bsds.matching import correspond_pixels, count_matches, match_pairs
from perpixel.tasks.edges.bsds.thin import thin


def brute_force(b1: np.ndarray, b2: np.ndarray, max_px: float) -> tuple[int, float]:
    """Size and cost of the reference's optimum by a dense assignment with outliers."""
    p1, p2 = np.argwhere(b1), np.argwhere(b2)
    n1, n2 = len(p1), len(p2)
    if n1 == 0 or n2 == 0:
        return 0, 0.0
    d = np.sqrt(((p1[:, None] - p2[None]) ** 2).sum(-1))
    cost = np.rint(d * 100)
    inf, big = 1e12, 1e8
    cost[d > max_px] = inf
    m = np.full((n1 + n2, n2 + n1), inf)
    m[:n1, :n2] = cost
    m[np.arange(n1), n2 + np.arange(n1)] = big  # outlier for each pixel of map 1
    m[n1 + np.arange(n2), np.arange(n2)] = big  # ... and of map 2
    m[n1:, n2:] = 0
    r, c = linear_sum_assignment(m)
    real = (r < n1) & (c < n2)
    return int(real.sum()), float(cost[r[real], c[real]].sum())


@pytest.mark.parametrize("seed", range(4))
def test_matcher_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w = rng.integers(3, 22, 2)
        b1 = rng.random((h, w)) < rng.uniform(0.05, 0.6)
        b2 = rng.random((h, w)) < rng.uniform(0.05, 0.6)
        max_px = rng.uniform(0.5, 4.5)
        pairs = match_pairs(b1, b2, max_px)
        # one-to-one, on-pixels only, within reach
        assert len(set(pairs[:, 0])) == len(pairs) == len(set(pairs[:, 1]))
        y1, x1 = np.divmod(pairs[:, 0], w)
        y2, x2 = np.divmod(pairs[:, 1], w)
        assert b1[y1, x1].all() and b2[y2, x2].all()
        d = np.hypot(y1 - y2, x1 - x2)
        assert (d <= max_px + 1e-9).all()
        # maximum cardinality first, then minimum total rounded distance
        assert (len(pairs), np.rint(d * 100).sum()) == brute_force(b1, b2, max_px)


def test_correspond_pixels_simple_cases():
    a = np.zeros((50, 60), bool)
    a[10, 5:55] = True
    m1, m2 = correspond_pixels(a, a)
    assert (m1 == a).all() and (m2 == a).all()
    far = np.roll(a, 30, axis=0)  # 30 px away, reach is 0.0075 * 78 = 0.6 px
    m1, m2 = correspond_pixels(a, far)
    assert not m1.any() and not m2.any()
    near = np.roll(a, 1, axis=0)
    m1, m2 = correspond_pixels(a, near, max_dist=0.02)  # 1.56 px reach
    assert m1.sum() == m2.sum() == 50
    with pytest.raises(ValueError, match="equal in size"):
        correspond_pixels(a, a[:10])


def test_thin_matches_matlab_semantics():
    bw = np.zeros((20, 30), bool)
    bw[5:9, 3:27] = True  # a 4-px thick bar thins to a line
    t = thin(bw)
    assert t.sum() < 30 and (t <= bw).all()
    assert label(t, np.ones((3, 3)))[1] == 1  # stays one 8-connected piece
    assert (thin(t) == t).all()  # idempotent
    ring = np.zeros((21, 21), bool)
    ring[3:18, 3:18] = True
    ring[8:13, 8:13] = False
    assert label(~thin(ring))[1] == 2  # the hole survives (Euler number kept)


def test_thin_equals_scikit_image():
    skimage = pytest.importorskip("skimage.morphology")  # implements MATLAB's algorithm
    rng = np.random.default_rng(1)
    for _ in range(30):
        bw = rng.random((30, 40)) < rng.uniform(0.1, 0.9)
        assert (thin(bw) == skimage.thin(bw)).all()


def test_count_matches_columns_and_identical_thresholds():
    gt = np.zeros((2, 40, 40), bool)
    gt[0, 20, 5:35] = True
    gt[1, 5:35, 20] = True
    pred = gt[0] | gt[1]
    counts = count_matches(np.stack([pred, pred, np.zeros_like(pred)]), gt, 2.0)
    assert (counts[0] == counts[1]).all()  # a repeated map reuses its counts
    cnt_r, sum_r, cnt_p, sum_p = counts[0]
    assert sum_r == 60 and cnt_r == 60
    assert cnt_p == sum_p == thin(pred).sum()
    assert tuple(counts[2]) == (0, 60, 0, 0)
