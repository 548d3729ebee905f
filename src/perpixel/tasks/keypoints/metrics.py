"""Interest-point metrics, as the published protocols compute them.

Detection AP, localisation error, repeatability and homography correctness follow the
reference evaluation of SuperPoint (github.com/rpautrat/SuperPoint,
superpoint/evaluations/detector_evaluation.py: compute_tp_fp, compute_pr, compute_mAP,
compute_loc_error, compute_repeatability; descriptor_evaluation.py: keep_shared_points,
compute_homography); the pair localisation error as its PyTorch port (eric-yyjau/
pytorch-superpoint, compute_repeatability); the mean matching accuracy as D2-Net's HPatches
benchmark. The code here is our own; the reference facts used:

- detection: a prediction is correct when a ground-truth point lies within `distance` px (<=);
  each ground-truth point is taken by the best-scored prediction reaching it first, the first
  ground-truth point in range in row-major order (a quirk kept: a later prediction whose first
  point in range is taken is a false positive even if another one is free); predictions with
  score <= 1e-4 are dropped; precision/recall pooled over all images. The MagicPoint table
  (synthetic shapes) uses distance 4 for mAP and localisation error.
- repeatability and localisation error: 3 px, the best 300 points of each image in the view
  shared with the other; a point is in view when 0 <= x < W and 0 <= y < H (the reference's
  test: half a pixel off the toolkit's -0.5 <= x < W - 0.5, kept so the numbers compare).
- homography: mean distance of the 4 image corners (0, 0), (W-1, 0), (0, H-1), (W-1, H-1)
  mapped by the estimate and by the truth; correct when <= 1, 3 or 5 px.
- MMA: per pair, the fraction of matches with reprojection error ||H a - b|| <= t px,
  t = 1..10 (0 when there are no matches); averaged over pairs.

Inputs are torch tensors or numpy arrays; points (N, 2) xy, shapes (H, W), H maps image A to
image B. Results are Python floats or float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def _np(x: ArrayLike | Sequence[float], cols: int | None = None) -> np.ndarray:
    """float64 numpy copy of `x`; (0, cols) when empty and `cols` given."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if cols is not None and a.size == 0:
        return a.reshape(0, cols)
    return a


def warp(points: ArrayLike, H: ArrayLike) -> np.ndarray:
    """(N, 2) xy points mapped by the (3, 3) homography H -> (N, 2) float64."""
    p = _np(points, 2)
    h = np.concatenate([p, np.ones((len(p), 1))], axis=1) @ _np(H).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return h[:, :2] / h[:, 2:]


def in_view(points: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """(N,) bool: 0 <= x < W and 0 <= y < H, the reference's test (see the module notes)."""
    x, y = points[:, 0], points[:, 1]
    return (x >= 0) & (x < shape[1]) & (y >= 0) & (y < shape[0])


def shared_view(points: ArrayLike, H: ArrayLike, shape_other: Sequence[int]) -> np.ndarray:
    """(N,) bool: the points that H maps inside the other image (H, W), as keep_shared_points."""
    return in_view(warp(points, H), shape_other)


# ----------------------------------------------------------------------- detection


def _tp_per_image(
    kp: np.ndarray, scores: np.ndarray, gt: np.ndarray, distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """(true-positive flags, scores) of one image's predictions, best score first."""
    order = np.argsort(-scores, kind="stable")
    kp, scores = kp[order], scores[order]
    # the reference lists ground truth from np.where on its map: row-major pixel order
    gt = gt[np.lexsort((np.rint(gt[:, 0]), np.rint(gt[:, 1])))]
    within = np.linalg.norm(kp[:, None] - gt[None], axis=-1) <= distance
    taken = np.zeros(len(gt), dtype=bool)
    tp = np.zeros(len(kp), dtype=bool)
    for i, row in enumerate(within):
        if row.any():
            j = int(np.argmax(row))
            tp[i] = not taken[j]
            taken[j] = True
    return tp, scores


def _div0(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """a / b, and where that is not finite: 1 if a == 0 else 0 (the reference's div0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.true_divide(a, b)
    bad = ~np.isfinite(c)
    c[bad] = np.where(a[bad] == 0, 1.0, 0.0)
    return c


def detection_pr(
    predictions: Sequence[tuple[ArrayLike, ArrayLike]],
    ground_truth: Sequence[ArrayLike],
    distance: float = 4.0,
    min_score: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall pooled over images, as compute_pr.

    Args:
        predictions: per image (keypoints (N, 2) xy, scores (N,)).
        ground_truth: per image (M, 2) xy.
        distance: px within which a prediction finds a ground-truth point.
        min_score: predictions scored <= this are ignored.

    Returns:
        (precision, recall), float64 (P + 2,), P the pooled predictions by descending score,
        padded with recall 0 and 1 at the ends and precision made non-increasing from the right.
    """
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truth)} images")
    tps, probs, n_gt = [], [], 0
    for (kp, sc), gt in zip(predictions, ground_truth, strict=True):
        kp, sc, gt = _np(kp, 2), _np(sc).reshape(-1), _np(gt, 2)
        keep = sc > min_score
        tp, s = _tp_per_image(kp[keep], sc[keep], gt, distance)
        tps.append(tp)
        probs.append(s)
        n_gt += len(gt)
    tp = np.concatenate(tps) if tps else np.zeros(0, dtype=bool)
    prob = np.concatenate(probs) if probs else np.zeros(0)
    tp = tp[np.argsort(-prob, kind="stable")]
    tp_cum = np.cumsum(tp).astype(np.float64)
    fp_cum = np.cumsum(~tp).astype(np.float64)
    recall = np.concatenate([[0.0], _div0(tp_cum, float(n_gt)), [1.0]])
    precision = np.concatenate([[0.0], _div0(tp_cum, tp_cum + fp_cum), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return precision, recall


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the (padded, monotone) curve of `detection_pr`, as compute_mAP."""
    p, r = np.asarray(precision), np.asarray(recall)
    return float(np.sum(p[1:] * (r[1:] - r[:-1])))


def detection_ap(
    predictions: Sequence[tuple[ArrayLike, ArrayLike]],
    ground_truth: Sequence[ArrayLike],
    distance: float = 4.0,
) -> float:
    """Detection mAP over images (MagicPoint's synthetic-shapes table: distance 4 px)."""
    return average_precision(*detection_pr(predictions, ground_truth, distance))


def detection_localization_error(
    predictions: Sequence[tuple[ArrayLike, ArrayLike]],
    ground_truth: Sequence[ArrayLike],
    score_threshold: float,
    distance: float = 4.0,
) -> float:
    """Mean distance (px) from each prediction scored > `score_threshold` to its nearest
    ground-truth point, over those within `distance`, pooled over images (compute_loc_error;
    the MagicPoint table used threshold 0.1 on its probabilities, distance 4). NaN if none."""
    errors = []
    for (kp, sc), gt in zip(predictions, ground_truth, strict=True):
        kp, gt = _np(kp, 2)[_np(sc).reshape(-1) > score_threshold], _np(gt, 2)
        if len(kp) and len(gt):
            d = np.linalg.norm(kp[:, None] - gt[None], axis=-1).min(axis=1)
            errors.append(d[d <= distance])
    e = np.concatenate(errors) if errors else np.zeros(0)
    return float(e.mean()) if len(e) else float("nan")


# ----------------------------------------------------------------------- image pairs


def _repeated(
    kp_a: ArrayLike,
    kp_b: ArrayLike,
    H: ArrayLike,
    shape_a: Sequence[int],
    shape_b: Sequence[int],
    distance: float,
    keep: int | None,
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(N1, N2, A's distances to B, B's distances to A) of the repeatability protocol:
    A's points mapped into B and kept in B's view, B's points whose preimage is in A's view,
    the first `keep` of each (inputs sorted by score, descending); nearest distances <= it."""
    a, b = warp(kp_a, H), _np(kp_b, 2)
    a = a[in_view(a, shape_b)][:keep]
    b = b[shared_view(b, np.linalg.inv(_np(H)), shape_a)][:keep]
    if len(a) == 0 or len(b) == 0:
        return len(a), len(b), np.zeros(0), np.zeros(0)
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    d1, d2 = d.min(axis=1), d.min(axis=0)
    return len(a), len(b), d1[d1 <= distance], d2[d2 <= distance]


def repeatability(
    kp_a: ArrayLike,
    kp_b: ArrayLike,
    H: ArrayLike,
    shape_a: Sequence[int],
    shape_b: Sequence[int],
    distance: float = 3.0,
    keep: int | None = 300,
) -> float:
    """Share of the points of both images (in the shared view, the best `keep` of each; inputs
    sorted by score, descending) with a point of the other image within `distance` px after
    mapping by H: (count_A + count_B) / (N_A + N_B). NaN when neither image has a point in the
    shared view (the reference leaves such pairs out of its mean: use np.nanmean)."""
    n1, n2, c1, c2 = _repeated(kp_a, kp_b, H, shape_a, shape_b, distance, keep)
    return (len(c1) + len(c2)) / (n1 + n2) if n1 + n2 else float("nan")


def localization_error(
    kp_a: ArrayLike,
    kp_b: ArrayLike,
    H: ArrayLike,
    shape_a: Sequence[int],
    shape_b: Sequence[int],
    distance: float = 3.0,
    keep: int | None = 300,
) -> float:
    """Mean distance (px) between the repeated points of `repeatability` and their nearest
    neighbour in the other image, both directions pooled. NaN when no point is repeated."""
    _, _, c1, c2 = _repeated(kp_a, kp_b, H, shape_a, shape_b, distance, keep)
    n = len(c1) + len(c2)
    return float((c1.sum() + c2.sum()) / n) if n else float("nan")


def corner_error(H_est: ArrayLike | None, H_true: ArrayLike, shape: Sequence[int]) -> float:
    """Mean distance (px) between image A's 4 corners (A of shape (H, W)) mapped by the
    estimate and by the true homography; inf when there is no estimate."""
    if H_est is None:
        return float("inf")
    h, w = shape[0], shape[1]
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    d = np.linalg.norm(warp(corners, H_est) - warp(corners, H_true), axis=1).mean()
    return float(d) if np.isfinite(d) else float("inf")


def homography_accuracy(
    errors: Iterable[float], thresholds: Iterable[float] = (1, 3, 5)
) -> dict[float, float]:
    """{t: share of pairs with corner error <= t}; NaN for every t when there are no pairs."""
    e = np.asarray(list(errors), dtype=np.float64)
    return {t: float(np.mean(e <= t)) if len(e) else float("nan") for t in thresholds}


def _match_errors(kp_a: ArrayLike, kp_b: ArrayLike, matches: ArrayLike, H: ArrayLike):
    """(A's indices, B's indices, ||H a - b|| in px) of the (K, 2) matches."""
    m = _np(matches, 2).astype(np.int64)
    ia, ib = m[:, 0], m[:, 1]
    err = np.linalg.norm(warp(_np(kp_a, 2)[ia], H) - _np(kp_b, 2)[ib], axis=1)
    return ia, ib, np.where(np.isnan(err), np.inf, err)


def matching_score(
    kp_a: ArrayLike,
    kp_b: ArrayLike,
    matches: ArrayLike,
    H: ArrayLike,
    shape_a: Sequence[int],
    shape_b: Sequence[int],
    distance: float = 3.0,
) -> float:
    """Correct matches over the features proposed in the shared view (SuperPoint's M. score):
    matches between two shared-view points with ||H a - b|| <= `distance` px, divided by the
    mean number of shared-view points of the two images. NaN when neither has one."""
    a_in = shared_view(kp_a, H, shape_b)
    b_in = shared_view(kp_b, np.linalg.inv(_np(H)), shape_a)
    n = a_in.sum() + b_in.sum()
    if n == 0:
        return float("nan")
    ia, ib, err = _match_errors(kp_a, kp_b, matches, H)
    correct = a_in[ia] & b_in[ib] & (err <= distance)
    return float(2.0 * correct.sum() / n)


def mean_matching_accuracy(
    kp_a: ArrayLike,
    kp_b: ArrayLike,
    matches: ArrayLike,
    H: ArrayLike,
    thresholds: Iterable[float] = range(1, 11),
) -> dict[float, float]:
    """{t: share of the matches with ||H a - b|| <= t px} of one pair (0 without matches), as
    D2-Net's HPatches benchmark; the MMA of a data set is the mean of these over its pairs."""
    _, _, err = _match_errors(kp_a, kp_b, matches, H)
    if len(err) == 0:
        err = np.array([np.inf])
    return {t: float(np.mean(err <= t)) for t in thresholds}
