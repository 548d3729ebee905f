"""Keypoint metrics on constructed cases with answers worked out by hand."""

import math

import numpy as np
import pytest
import torch

from perpixel.tasks.keypoints.metrics import (
    average_precision,
    corner_error,
    detection_ap,
    detection_localization_error,
    detection_pr,
    homography_accuracy,
    localization_error,
    matching_score,
    mean_matching_accuracy,
    repeatability,
    shared_view,
    warp,
)

EYE = torch.eye(3)


def _shift(dx, dy):
    return torch.tensor([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]])


def test_perfect_detections_have_ap_one():
    gt = [torch.tensor([[10.0, 10], [30, 5]]), torch.tensor([[3.0, 40]])]
    pred = [(g + 0.5, torch.tensor([0.9, 0.8][: len(g)])) for g in gt]
    assert detection_ap(pred, gt) == pytest.approx(1.0)


def test_hand_made_ap():
    # 2 ground-truth points; 3 predictions: hit (0.9), false positive (0.8), hit (0.7).
    # recall .5 .5 1, precision 1 .5 2/3 -> monotone 1 .67 .67 -> AP = .5*1 + .5*2/3 = 5/6
    gt = [torch.tensor([[10.0, 10], [40, 40]])]
    kp = torch.tensor([[11.0, 10], [25, 25], [40, 41]])
    pred = [(kp, torch.tensor([0.9, 0.8, 0.7]))]
    p, r = detection_pr(pred, gt)
    np.testing.assert_allclose(r, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(p, [1, 1, 2 / 3, 2 / 3, 0])
    assert average_precision(p, r) == pytest.approx(5 / 6)
    # the same predictions listed in another order and split over two images: same pooled AP
    pred2 = [(kp[[2, 0]], torch.tensor([0.7, 0.9])), (kp[[1]], torch.tensor([0.8]))]
    gt2 = [gt[0], torch.zeros(0, 2)]
    assert detection_ap(pred2, gt2) == pytest.approx(5 / 6)


def test_detection_distance_duplicates_and_low_scores():
    gt = [torch.tensor([[10.0, 10]])]
    far = [(torch.tensor([[13.0, 10]]), torch.tensor([0.9]))]
    assert detection_ap(far, gt, distance=4.0) == pytest.approx(1.0)
    assert detection_ap(far, gt, distance=2.0) == 0.0
    # a second prediction on a taken point is a false positive: precision 1, 1/2
    dup = [(torch.tensor([[10.0, 10], [10, 11]]), torch.tensor([0.9, 0.8]))]
    p, r = detection_pr(dup, gt)
    np.testing.assert_allclose(r[1:-1], [1, 1])
    np.testing.assert_allclose(p[1:-1], [1, 0.5])
    # predictions scored <= 1e-4 are not predictions
    low = [(torch.tensor([[10.0, 10]]), torch.tensor([1e-5]))]
    assert detection_ap(low, gt) == 0.0


def test_detection_localization_error():
    gt = [torch.tensor([[10.0, 10], [40, 40]])]
    kp = torch.tensor([[11.0, 10], [40, 42], [25, 25], [10, 10.5]])
    pred = [(kp, torch.tensor([0.9, 0.8, 0.9, 0.05]))]
    # kept: scores > 0.1 -> errors 1, 2, 15 (too far, dropped)
    assert detection_localization_error(pred, gt, 0.1) == pytest.approx(1.5)
    assert math.isnan(detection_localization_error(pred, gt, 0.95))


def test_repeatability_identity_and_shift():
    kp = torch.tensor([[5.0, 5], [20, 30], [50, 10]])
    assert repeatability(kp, kp, EYE, (64, 64), (64, 64)) == 1.0
    assert localization_error(kp, kp, EYE, (64, 64), (64, 64)) == 0.0
    # B: the first two found 1 px off, the third missing, one new point far from all
    kb = torch.tensor([[6.0, 5], [20, 31], [40, 40]])
    assert repeatability(kp, kb, EYE, (64, 64), (64, 64)) == pytest.approx(4 / 6)
    assert localization_error(kp, kb, EYE, (64, 64), (64, 64)) == pytest.approx(1.0)
    assert repeatability(kp, kb, EYE, (64, 64), (64, 64), distance=0.5) == 0.0


def test_repeatability_counts_only_the_shared_view():
    # B is A shifted left by 20 px: A's points with x < 20 leave B's view and B's points with
    # x >= 44 come from outside A; neither counts.
    H = _shift(-20, 0)
    ka = torch.tensor([[30.0, 10], [50, 20], [5, 5]])  # the last leaves the view
    kb = torch.tensor([[10.0, 10], [60, 30]])  # the last has no preimage in A
    assert repeatability(ka, kb, H, (64, 64), (64, 64)) == pytest.approx(2 / 3)
    assert shared_view(ka, H, (64, 64)).tolist() == [True, True, False]
    # only the best `keep` points of each image count (inputs sorted by score)
    assert repeatability(ka[[1, 0]], kb, H, (64, 64), (64, 64), keep=1) == 0.0
    assert math.isnan(repeatability(ka[2:], kb[1:], H, (64, 64), (64, 64)))


def test_corner_error_and_accuracy():
    H = torch.tensor([[1.1, 0.05, 3], [0.02, 0.9, -2], [1e-4, 2e-4, 1]])
    assert corner_error(H, H, (48, 64)) == pytest.approx(0.0, abs=1e-9)
    assert corner_error(H * 3.0, H, (48, 64)) == pytest.approx(0.0, abs=1e-4)  # scale-free
    assert corner_error(_shift(3, 4), EYE, (48, 64)) == pytest.approx(5.0)
    assert corner_error(None, EYE, (48, 64)) == math.inf
    # a scaling about the origin moves the corners (0,0),(63,0),(0,47),(63,47) by 0,6.3,4.7,7.86
    S = torch.diag(torch.tensor([1.1, 1.1, 1.0]))
    want = (0 + 6.3 + 4.7 + math.hypot(6.3, 4.7)) / 4
    assert corner_error(S, EYE, (48, 64)) == pytest.approx(want)
    acc = homography_accuracy([0.5, 1.0, 2.9, 4.0, math.inf])
    assert acc == {1: pytest.approx(0.4), 3: pytest.approx(0.6), 5: pytest.approx(0.8)}


def test_matching_score_and_mma():
    H = _shift(-20, 0)
    ka = torch.tensor([[30.0, 10], [40, 20], [50, 30], [5, 5]])  # last: out of B's view
    kb = torch.tensor([[10.0, 10], [20, 22.5], [0, 0], [60, 60]])  # last: not from A's view
    warped = warp(ka, H)
    np.testing.assert_allclose(warped[0], [10, 10])
    matches = torch.tensor([[0, 0], [1, 1], [2, 2], [3, 2]])
    # errors 0, 2.5, hypot(30, 30), hypot(15, 5); within 3 px: matches 0 and 1;
    # shared-view points: 3 in A, 3 in B -> score 2 / mean(3, 3)
    assert matching_score(ka, kb, matches, H, (64, 64), (64, 64)) == pytest.approx(2 * 2 / 6)
    assert matching_score(ka, kb, matches, H, (64, 64), (64, 64), distance=2) == pytest.approx(
        2 / 6
    )
    mma = mean_matching_accuracy(ka, kb, matches, H)
    assert list(mma) == list(range(1, 11))
    assert mma[1] == pytest.approx(0.25) and mma[2] == pytest.approx(0.25)
    assert mma[3] == pytest.approx(0.5) and mma[10] == pytest.approx(0.5)
    empty = mean_matching_accuracy(ka, kb, torch.zeros(0, 2, dtype=torch.long), H)
    assert all(v == 0 for v in empty.values())
