"""Mutual nearest-neighbour matching and RANSAC homographies."""

import sys

import pytest
import torch
import torch.nn.functional as F

from perpixel.errors import ConfigError, PerpixelError
from perpixel.tasks.keypoints.matching import (
    distances,
    estimate_homography,
    mutual_nearest_neighbours,
)
from perpixel.tasks.keypoints.metrics import corner_error


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_mutual_nearest_neighbours_hand_made():
    a = _unit([1, 0, 0], [0, 1, 0], [0.9, 0.1, 0])
    b = _unit([0, 0.95, 0.05], [1, 0.02, 0])
    # a0 <-> b1 mutual; a1 <-> b0 mutual; a2's nearest is b1, but b1's nearest is a0
    m = mutual_nearest_neighbours(a, b)
    assert m.dtype == torch.long and m.tolist() == [[0, 1], [1, 0]]
    m_ba = mutual_nearest_neighbours(b, a)
    assert m_ba.tolist() == [[0, 1], [1, 0]]


def test_ratio_test():
    a = _unit([1, 0, 0], [0, 0, 1])
    # a0 is near b0 and almost as near b1 (ambiguous); a1 has one clear match b2
    b = _unit([1, 0.30, 0], [1, -0.32, 0], [0, 0.1, 1])
    assert mutual_nearest_neighbours(a, b).tolist() == [[0, 0], [1, 2]]
    assert mutual_nearest_neighbours(a, b, ratio=0.8).tolist() == [[1, 2]]
    d = distances(a, b)
    assert (d[0, 0] / d[0, 1]).item() > 0.8 and (d[1, 2] / d[1, 0]).item() < 0.8


@pytest.mark.parametrize("n, m", [(0, 3), (3, 0), (0, 0), (1, 1), (1, 3), (3, 1)])
def test_mnn_small_sets(n, m):
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(n, 8, generator=g), dim=1)
    b = F.normalize(torch.randn(m, 8, generator=g), dim=1)
    out = mutual_nearest_neighbours(a, b)
    assert out.dtype == torch.long
    assert out.shape == ((1, 2) if n and m else (0, 2))  # one of the sets has at most 1
    assert mutual_nearest_neighbours(a, b, ratio=0.9).shape[0] <= out.shape[0]


def test_hamming_matching():
    a = torch.tensor([[0b11110000, 0], [0, 0xFF]], dtype=torch.uint8)
    b = torch.tensor([[0, 0xFE], [0b11110001, 0], [0xFF, 0xFF]], dtype=torch.uint8)
    d = distances(a, b, "hamming")
    assert d.tolist() == [[11, 1, 12], [1, 13, 8]]
    assert mutual_nearest_neighbours(a, b, metric="hamming").tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ConfigError):
        distances(a, b, "cosine")


def _correspondences(n=100, outliers=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    H = torch.tensor(
        [[1.05, 0.1, 5.0], [-0.05, 0.95, 3.0], [1e-4, -2e-4, 1.0]], dtype=torch.float64
    )
    pa = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([320.0, 240.0])
    h = torch.cat([pa, torch.ones(n, 1, dtype=torch.float64)], 1) @ H.T
    pb = h[:, :2] / h[:, 2:]
    bad = torch.randperm(n, generator=g)[: int(outliers * n)]
    # outliers moved at least 20 px away from where they belong
    pb[bad] += (20 + 60 * torch.rand(len(bad), 2, generator=g, dtype=torch.float64)) * torch.sign(
        torch.randn(len(bad), 2, generator=g, dtype=torch.float64)
    )
    inlier = torch.ones(n, dtype=torch.bool)
    inlier[bad] = False
    return H, pa, pb, inlier


def test_kornia_ransac_recovers_a_homography():
    H, pa, pb, inlier = _correspondences()
    Hest, inliers, which = estimate_homography(pa, pb, method="kornia")
    assert which == "kornia"
    assert Hest is not None and Hest.dtype == torch.float64 and Hest[2, 2] == 1
    assert corner_error(Hest, H, (240, 320)) < 0.5
    assert torch.equal(inliers, inlier)
    again, _, _ = estimate_homography(pa, pb, method="kornia")
    assert torch.equal(Hest, again)  # deterministic for a seed


def test_too_few_points():
    H, pa, pb, _ = _correspondences(n=3, outliers=0)
    Hest, inliers, which = estimate_homography(pa, pb, method="kornia")
    assert Hest is None and inliers.tolist() == [False] * 3 and which == "kornia"
    with pytest.raises(ConfigError):
        estimate_homography(pa, pb, method="magsac")


def test_auto_without_opencv_uses_kornia(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    H, pa, pb, _ = _correspondences(n=20, outliers=0)
    Hest, _, which = estimate_homography(pa, pb)
    assert which == "kornia" and corner_error(Hest, H, (240, 320)) < 0.01
    with pytest.raises(PerpixelError, match="needs OpenCV"):
        estimate_homography(pa, pb, method="opencv")


def test_opencv_ransac_recovers_a_homography():
    pytest.importorskip("cv2")
    H, pa, pb, inlier = _correspondences()
    Hest, inliers, which = estimate_homography(pa, pb, method="opencv")
    assert which == "opencv" and estimate_homography(pa, pb)[2] == "opencv"
    assert corner_error(Hest, H, (240, 320)) < 0.5
    assert torch.equal(inliers, inlier)
