"""Tests for perpixel.metrics.confusion: confusion matrix and the metrics derived from it."""

import math

import numpy as np
import pytest
import torch

from perpixel.metrics.confusion import (
    SegmentationMetrics,
    confusion_matrix,
    metrics_from_confusion,
)

# A tiny 3-class example worked out by hand (255 = ignore).
#   (gt, pred) pairs: (0,0) (0,1) (1,1) | (1,2) (2,2) and one ignored pixel (255,0).
TARGET = torch.tensor([[0, 0, 1], [1, 2, 255]])
PRED = torch.tensor([[0, 1, 1], [2, 2, 0]])
CM = [
    [1, 1, 0],
    [0, 1, 1],
    [0, 0, 1],
]


def brute_force_miou(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int):
    """mIoU from boolean masks, one class at a time (independent of the confusion matrix)."""
    valid = target != ignore
    ious = []
    for c in range(num_classes):
        p = (pred == c) & valid
        t = (target == c) & valid
        union = (p | t).sum()
        if union == 0:
            continue
        ious.append((p & t).sum() / union)
    return float(np.mean(ious)), float((pred == target)[valid].mean())


# ---------------------------------------------------------------- confusion_matrix


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(PRED, TARGET, 3)
    assert cm.dtype == torch.int64
    assert cm.tolist() == CM


def test_confusion_matrix_rows_are_ground_truth():
    # one pixel of class 0 predicted as 2: row 0, column 2
    cm = confusion_matrix(torch.tensor([2]), torch.tensor([0]), 3)
    assert cm[0, 2] == 1
    assert cm.sum() == 1


def test_ignore_index_is_excluded():
    target = torch.full((4, 5), 255)
    target[0, 0] = 1
    pred = torch.zeros(4, 5, dtype=torch.long)
    cm = confusion_matrix(pred, target, 2)
    assert cm.tolist() == [[0, 0], [1, 0]]


def test_custom_ignore_index():
    target = torch.tensor([0, 11, 1, 11])
    pred = torch.tensor([0, 5, 1, 0])  # predictions at ignored pixels are not checked or counted
    cm = confusion_matrix(pred, target, 2, ignore_index=11)
    assert cm.tolist() == [[1, 0], [0, 1]]


def test_all_ignored_gives_zero_matrix():
    cm = confusion_matrix(torch.zeros(3, 3, dtype=torch.long), torch.full((3, 3), 255), 4)
    assert cm.shape == (4, 4)
    assert cm.sum() == 0


def test_logits_are_argmaxed():
    # (B=1, C=3, H=2, W=3) scores whose arg-max is PRED: one-hot * 5 plus noise below 1
    g = torch.Generator().manual_seed(0)
    logits = 5 * torch.nn.functional.one_hot(PRED, 3).permute(2, 0, 1)[None].float()
    logits = logits + torch.rand(logits.shape, generator=g)
    cm = confusion_matrix(logits, TARGET[None], 3)
    assert cm.tolist() == CM


def test_out_of_range_target_raises():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([-1, 1]), 3)


def test_out_of_range_prediction_raises():
    with pytest.raises(ValueError):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_ignore_none_counts_everything_and_rejects_255():
    with pytest.raises(ValueError):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 255]), 3, ignore_index=None)
    cm = confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 1]), 2, ignore_index=None)
    assert cm.tolist() == [[1, 0], [0, 1]]


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2), 2)


# ---------------------------------------------------------------- metrics_from_confusion


def test_metrics_by_hand():
    m = metrics_from_confusion(torch.tensor(CM), names=["a", "b", "c"])
    assert m["num_pixels"] == 5
    assert m["num_classes"] == 3
    assert m["pixel_accuracy"] == pytest.approx(3 / 5)
    assert m["per_class_iou"] == pytest.approx({"a": 1 / 2, "b": 1 / 3, "c": 1 / 2})
    assert m["miou"] == pytest.approx(4 / 9)
    assert m["per_class_accuracy"] == pytest.approx({"a": 1 / 2, "b": 1 / 2, "c": 1.0})
    assert m["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert m["per_class_dice"] == pytest.approx({"a": 2 / 3, "b": 1 / 2, "c": 2 / 3})
    assert m["mean_dice"] == pytest.approx(11 / 18)
    # frequency-weighted IoU: gt frequencies 2/5, 2/5, 1/5
    assert m["fw_iou"] == pytest.approx(13 / 30)
    assert m["absent_classes"] == []


def test_metrics_accept_numpy_and_default_names():
    m = metrics_from_confusion(np.array(CM))
    assert list(m["per_class_iou"]) == ["0", "1", "2"]
    assert m["miou"] == pytest.approx(4 / 9)


def test_absent_class_is_none_and_left_out_of_means():
    # 4 classes: class 2 is predicted once but never in the ground truth; class 3 is nowhere.
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])
    cm = confusion_matrix(pred, target, 4)
    assert cm.tolist() == [[1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    m = metrics_from_confusion(cm, names=["a", "b", "c", "d"])
    assert m["absent_classes"] == ["d"]
    assert m["per_class_iou"]["d"] is None
    assert m["per_class_accuracy"]["d"] is None
    assert m["per_class_dice"]["d"] is None
    # predicted-but-absent class: IoU 0 and counted in the mean
    assert m["per_class_iou"]["c"] == 0.0
    assert m["per_class_dice"]["c"] == 0.0
    assert m["per_class_accuracy"]["c"] is None  # no ground-truth pixel: accuracy undefined
    assert m["miou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert m["mean_dice"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["mean_class_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["pixel_accuracy"] == pytest.approx(3 / 4)
    assert m["fw_iou"] == pytest.approx(1 / 2 * 1 / 2 + 1 / 2 * 1)


def test_perfect_prediction_gives_ones():
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 5, (2, 8, 9), generator=g)
    target[0, 0, :3] = 255
    pred = torch.where(target == 255, torch.zeros_like(target), target)
    m = metrics_from_confusion(confusion_matrix(pred, target, 5))
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou", "mean_dice"):
        assert m[key] == pytest.approx(1.0), key
    assert all(v == pytest.approx(1.0) for v in m["per_class_iou"].values())


def test_all_wrong_prediction_gives_zero():
    target = torch.tensor([[0, 1, 2], [2, 1, 0]])
    pred = (target + 1) % 3
    m = metrics_from_confusion(confusion_matrix(pred, target, 3))
    assert m["miou"] == 0.0
    assert m["pixel_accuracy"] == 0.0
    assert m["mean_class_accuracy"] == 0.0
    assert m["fw_iou"] == 0.0
    assert m["mean_dice"] == 0.0
    assert m["absent_classes"] == []


def test_empty_matrix_gives_nan_not_error():
    m = metrics_from_confusion(torch.zeros(3, 3, dtype=torch.long))
    assert math.isnan(m["miou"])
    assert math.isnan(m["pixel_accuracy"])
    assert m["num_pixels"] == 0
    assert m["absent_classes"] == ["0", "1", "2"]


def test_mismatched_names_raise():
    with pytest.raises(ValueError, match="names"):
        metrics_from_confusion(torch.tensor(CM), names=["a", "b"])


def test_non_square_matrix_raises():
    with pytest.raises(ValueError):
        metrics_from_confusion(np.zeros((3, 2)))


def test_miou_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    c = 6
    target = rng.integers(0, c, size=(3, 20, 30))
    target[rng.random(target.shape) < 0.1] = 255
    # predictions: mostly right, sometimes a random class, class 5 never predicted
    pred = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, c - 1, target.shape))
    pred = np.where(target == 255, rng.integers(0, c, target.shape), pred)
    expected_miou, expected_acc = brute_force_miou(pred, target, c, 255)
    m = metrics_from_confusion(
        confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), c)
    )
    assert m["miou"] == pytest.approx(expected_miou, abs=1e-12)
    assert m["pixel_accuracy"] == pytest.approx(expected_acc, abs=1e-12)
    assert m["num_pixels"] == int((target != 255).sum())


# ---------------------------------------------------------------- SegmentationMetrics


def random_batches(n: int, c: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        target = torch.randint(0, c, (2, 6, 7), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.1] = 255
        logits = torch.randn(2, c, 6, 7, generator=g)
        out.append((logits, target))
    return out


def test_streaming_equals_one_update_on_concatenation():
    batches = random_batches(4, 5)
    streamed = SegmentationMetrics(5)
    for logits, target in batches:
        streamed.update(logits, target)
    whole = SegmentationMetrics(5)
    whole.update(torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
    assert torch.equal(streamed.confmat, whole.confmat)
    assert streamed.compute() == whole.compute()
    assert streamed.compute()["num_pixels"] == sum(int((t != 255).sum()) for _, t in batches)


def test_summed_confmats_of_two_workers_equal_one_over_all_data():
    batches = random_batches(4, 4, seed=3)
    a, b, whole = SegmentationMetrics(4), SegmentationMetrics(4), SegmentationMetrics(4)
    for logits, target in batches[:2]:
        a.update(logits, target)
    for logits, target in batches[2:]:
        b.update(logits, target)
    for logits, target in batches:
        whole.update(logits, target)
    assert torch.equal(a.confmat + b.confmat, whole.confmat)
    merged = whole.compute()
    assert merged.pop("confusion_matrix") == whole.confmat.tolist()
    assert metrics_from_confusion(a.confmat + b.confmat) == merged
    # the state's reduction is a sum, as DDP needs
    a.merge_state(b)
    assert torch.equal(a.confmat, whole.confmat)


def test_metric_accepts_ids_and_names():
    m = SegmentationMetrics(3, names=["a", "b", "c"])
    m.update(PRED, TARGET)
    out = m.compute()
    assert m.confmat.tolist() == CM
    assert out["miou"] == pytest.approx(4 / 9)
    assert list(out["per_class_iou"]) == ["a", "b", "c"]


def test_metric_reset():
    m = SegmentationMetrics(3)
    m.update(PRED, TARGET)
    m.reset()
    assert m.confmat.sum() == 0
    m.update(PRED, TARGET)
    assert m.confmat.tolist() == CM


def test_metric_forward_returns_batch_and_accumulates():
    m = SegmentationMetrics(3)
    m.update(PRED, TARGET)
    batch = m(PRED, TARGET)  # torchmetrics forward: value of this batch alone
    assert batch["num_pixels"] == 5
    assert m.confmat.tolist() == (2 * torch.tensor(CM)).tolist()


def test_metric_does_not_keep_autograd_graph():
    logits = torch.randn(1, 3, 2, 3, requires_grad=True)
    m = SegmentationMetrics(3)
    m.update(logits, TARGET[None])
    assert not m.confmat.requires_grad


def test_metric_out_of_range_target_raises():
    m = SegmentationMetrics(3)
    with pytest.raises(ValueError):
        m.update(torch.tensor([0, 1]), torch.tensor([0, 7]))


def test_metric_mismatched_names_raise():
    m = SegmentationMetrics(3, names=["a", "b"])
    m.update(PRED, TARGET)
    with pytest.raises(ValueError, match="names"):
        m.compute()
