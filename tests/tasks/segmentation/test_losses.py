"""Tests for perpixel.tasks.segmentation.losses: cross-entropy, soft Dice, weighted sums, class weights."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perpixel.tasks.segmentation.losses import (
    DiceLoss,
    SegmentationLoss,
    class_pixel_counts,
    class_weights,
    dice_loss,
)


def random_batch(c: int = 4, seed: int = 0, ignore_frac: float = 0.2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 5, 6, generator=g)
    target = torch.randint(0, c, (2, 5, 6), generator=g)
    target[torch.rand(target.shape, generator=g) < ignore_frac] = 255
    return logits, target


# ---------------------------------------------------------------- cross-entropy


def test_ce_only_equals_torch_cross_entropy():
    logits, target = random_batch()
    loss = SegmentationLoss(ce=1, dice=0)(logits, target)
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_ce_scaled_by_its_weight():
    logits, target = random_batch(seed=1)
    loss = SegmentationLoss(ce=2.5, dice=0)(logits, target)
    assert loss.item() == pytest.approx(
        2.5 * F.cross_entropy(logits, target, ignore_index=255).item(), rel=1e-6
    )


def test_class_weighted_ce_equals_torch():
    logits, target = random_batch(seed=2)
    w = [0.5, 2.0, 1.0, 3.0]
    loss = SegmentationLoss(class_weights=w)(logits, target)
    expected = F.cross_entropy(logits, target, weight=torch.tensor(w), ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # and the weights really matter
    assert abs(loss.item() - F.cross_entropy(logits, target, ignore_index=255).item()) > 1e-3


def test_class_weights_are_a_buffer():
    module = SegmentationLoss(class_weights=[1.0, 2.0])
    assert torch.equal(module.state_dict()["class_weights"], torch.tensor([1.0, 2.0]))


def test_custom_ignore_index():
    logits, target = random_batch(c=3, seed=3)
    target = torch.where(target == 255, torch.tensor(7), target)
    loss = SegmentationLoss(ignore_index=7)(logits, target)
    expected = F.cross_entropy(logits, target, ignore_index=7)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"dice": 1.0}, {"ce": 0.0, "dice": 1.0}])
def test_all_ignored_batch_gives_finite_zero_and_gradients(kwargs):
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    loss = SegmentationLoss(class_weights=[1.0, 2.0, 3.0], **kwargs)(logits, target)
    assert torch.isfinite(loss)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad == 0).all()


def test_gradients_flow_on_normal_batch():
    logits, target = random_batch(seed=4)
    logits.requires_grad_(True)
    SegmentationLoss(ce=1, dice=1)(logits, target).backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    # pixels that are ignored get no gradient
    ignored = (target == 255).unsqueeze(1).expand_as(logits)
    assert (logits.grad[ignored] == 0).all()


def test_batch_of_zero_weight_classes_is_finite():
    logits = torch.randn(1, 2, 3, 3)
    target = torch.ones(1, 3, 3, dtype=torch.long)
    loss = SegmentationLoss(class_weights=[1.0, 0.0])(logits, target)
    assert torch.isfinite(loss)


# ---------------------------------------------------------------- Dice


def test_dice_perfect_large_margin_logits_near_zero():
    g = torch.Generator().manual_seed(5)
    target = torch.randint(0, 3, (2, 6, 7), generator=g)
    target[0, 0] = 255
    logits = 30.0 * F.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2).float()
    assert dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_all_wrong_large_margin_logits_near_one():
    target = torch.tensor([[[0, 1], [1, 0]]])
    logits = 30.0 * F.one_hot(1 - target, 2).permute(0, 3, 1, 2).float()
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(1.0, abs=1e-6)


def test_dice_hand_computed_two_class_example():
    # pixel 1: logits (ln 3, 0) -> p = (3/4, 1/4), class 0
    # pixel 2: logits (0, 0)    -> p = (1/2, 1/2), class 1
    # pixel 3: ignored, arbitrary logits
    # class 0: inter 3/4, denom (3/4 + 1/2) + 1 = 9/4 -> dice 2/3
    # class 1: inter 1/2, denom (1/4 + 1/2) + 1 = 7/4 -> dice 4/7
    # loss = 1 - (2/3 + 4/7) / 2 = 8/21
    logits = torch.tensor([[[[math.log(3), 0.0, 5.0]], [[0.0, 0.0, -2.0]]]])
    target = torch.tensor([[[0, 1, 255]]])
    assert dice_loss(logits, target, smooth=0.0).item() == pytest.approx(8 / 21, rel=1e-6)


def test_dice_smooth_scores_absent_class_as_perfect():
    # class 2 absent from target and (with a large margin) from prediction: its dice is 1
    target = torch.tensor([[[0, 1]]])
    logits = torch.full((1, 3, 1, 2), -30.0)
    logits[0, 0, 0, 0] = logits[0, 1, 0, 1] = 30.0
    assert dice_loss(logits, target, smooth=1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_ignores_logits_at_ignored_pixels():
    logits, target = random_batch(seed=6, ignore_frac=0.3)
    assert (target == 255).any()
    changed = logits.clone()
    ignored = (target == 255).unsqueeze(1).expand_as(logits)
    changed[ignored] = torch.randn(int(ignored.sum())) * 10
    a, b = dice_loss(logits, target), dice_loss(changed, target)
    assert a.item() == pytest.approx(b.item(), abs=1e-7)
    # a control: changing a labelled pixel does change the value
    changed[~ignored] += 3 * torch.randn(int((~ignored).sum()))
    assert abs(dice_loss(changed, target).item() - a.item()) > 1e-4


def test_dice_ignore_none_counts_every_pixel():
    logits, target = random_batch(seed=7, ignore_frac=0.0)
    assert dice_loss(logits, target, ignore_index=None).item() == pytest.approx(
        dice_loss(logits, target).item(), abs=1e-7
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_dice_in_unit_interval(seed, smooth):
    logits, target = random_batch(c=5, seed=seed)
    v = dice_loss(logits * 4, target, smooth=smooth).item()
    assert 0.0 <= v <= 1.0


def test_dice_module_equals_function():
    logits, target = random_batch(seed=8)
    assert DiceLoss(smooth=0.5)(logits, target).item() == pytest.approx(
        dice_loss(logits, target, smooth=0.5).item()
    )


def test_weighted_sum_of_ce_and_dice():
    logits, target = random_batch(seed=9)
    a, b = 0.7, 1.9
    loss = SegmentationLoss(ce=a, dice=b)(logits, target)
    ce = F.cross_entropy(logits, target, ignore_index=255)
    expected = a * ce + b * dice_loss(logits, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    dice_only = SegmentationLoss(ce=0, dice=1)(logits, target)
    assert dice_only.item() == pytest.approx(dice_loss(logits, target).item(), rel=1e-6)


# ---------------------------------------------------------------- class statistics


MASKS = [
    np.array([[0, 0], [1, 255]]),  # 3 valid pixels: class 0 x2, class 1 x1
    np.array([[2, 2, 2], [0, 2, 255]]),  # 5 valid pixels: class 0 x1, class 2 x4
    np.full((2, 2), 255),  # nothing labelled
]


def test_class_pixel_counts_by_hand():
    counts, image_pixels = class_pixel_counts(MASKS, 4)
    assert counts.tolist() == [3, 1, 4, 0]
    # class 0 occurs in images 1 and 2 (3 + 5 valid pixels), class 1 in image 1, class 2 in 2
    assert image_pixels.tolist() == [8, 3, 5, 0]


def test_class_pixel_counts_accepts_tensors():
    counts, image_pixels = class_pixel_counts([torch.from_numpy(m) for m in MASKS], 4)
    assert counts.tolist() == [3, 1, 4, 0]
    assert image_pixels.tolist() == [8, 3, 5, 0]


def test_median_frequency_by_hand():
    counts, image_pixels = class_pixel_counts(MASKS, 3)
    # freq = 3/8, 1/3, 4/5 -> median 3/8 -> w = 1, 9/8, 15/32
    w = class_weights(counts, image_pixels, "median_frequency")
    assert w == pytest.approx([1.0, 9 / 8, 15 / 32])


def test_median_frequency_absent_class_weight_zero():
    counts, image_pixels = class_pixel_counts(MASKS, 4)
    w = class_weights(counts, image_pixels)
    assert w == pytest.approx([1.0, 9 / 8, 15 / 32, 0.0])


def test_median_frequency_needs_image_pixels():
    with pytest.raises(ValueError, match="image_pixels"):
        class_weights(np.array([1, 2]), None, "median_frequency")


def test_inverse_frequency_mean_one_and_absent_zero():
    counts = np.array([3, 1, 4, 0])
    w = class_weights(counts, method="inverse_frequency")
    # 1/freq = 8/3, 8, 2 (mean 38/9) -> 12/19, 36/19, 9/19
    assert w == pytest.approx([12 / 19, 36 / 19, 9 / 19, 0.0])
    assert w[:3].mean() == pytest.approx(1.0)


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="unknown"):
        class_weights(np.array([1, 2]), np.array([3, 3]), "sqrt")


def test_no_labelled_pixel_raises():
    with pytest.raises(ValueError):
        class_weights(np.zeros(3), np.zeros(3))


def test_sqrt_median_frequency_is_gentler():
    counts = np.array([1000, 100, 1, 0])
    pixels = np.array([1000, 1000, 1000, 0])
    full = class_weights(counts, pixels, "median_frequency")
    gentle = class_weights(counts, pixels, "sqrt_median_frequency")
    assert np.allclose(gentle, np.sqrt(full)) and gentle[3] == 0
    assert gentle[2] < full[2] and gentle[2] > gentle[1] > gentle[0]  # same order, milder
