"""Tests for perpixel.metrics.mask_ap: mask AP as pycocotools' COCOeval(iouType="segm").

Every expected number is worked out in the test: with one class, AP at an IoU threshold is
the mean over the 101 recall points of the (monotone) precision reached at that recall."""

import math

import numpy as np
import pytest
import torch

from perpixel.metrics.mask_ap import (
    STAT_NAMES,
    MaskAP,
    accumulate,
    evaluate_image,
    instance_targets,
    mask_iou,
    summarize,
)

H, W = 64, 64
EPS = np.spacing(1)  # pycocotools' precision is tp / (tp + fp + eps)


def box(y0, y1, x0, x1, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def run(gt, dets, crowd=None, area=None, class_ids=(1,)):
    """One image, all of class 1: gt masks, [(mask, score)] -> compute()'s dict."""
    metric = MaskAP(list(class_ids))
    dm = np.stack([d for d, _ in dets]) if dets else np.zeros((0, H, W), bool)
    metric.update(
        np.stack(gt), np.ones(len(gt), int), dm, np.ones(len(dets), int),
        np.array([s for _, s in dets], float), crowd, area,
    )  # fmt: skip
    return metric.compute()


def test_mask_iou_by_hand():
    g = np.stack([box(0, 10, 0, 10), box(20, 30, 20, 30)])  # 100 px each
    d = np.stack([box(0, 10, 0, 5), box(25, 35, 20, 30), box(40, 50, 40, 50)])
    iou = mask_iou(d, g)
    assert iou.tolist() == [[0.5, 0.0], [0.0, 50 / 150], [0.0, 0.0]]
    crowd = mask_iou(d, g, np.array([False, True]))  # crowd: intersection / detection area
    assert crowd[1].tolist() == [0.0, 0.5]
    assert mask_iou(d[:0], g).shape == (0, 2)


def test_perfect_detections_give_one():
    gt = [box(0, 20, 0, 20), box(30, 60, 30, 60)]  # 400 px (small < 1024), 900 px
    r = run(gt, [(gt[0], 0.9), (gt[1], 0.8)])
    assert r["AP"] == r["AP50"] == r["AP75"] == pytest.approx(1 / (1 + EPS))
    assert r["AR1"] == 0.5 and r["AR10"] == r["AR100"] == 1.0
    assert r["APs"] == pytest.approx(1.0) and math.isnan(r["APm"]) and math.isnan(r["APl"])


def test_iou_072_matches_at_five_thresholds():
    gt = [box(0, 10, 0, 10)]  # 100 px
    r = run(gt, [(box(0, 9, 0, 8), 0.5)])  # 72 px inside: IoU 0.72 >= 0.5 ... 0.70 only
    assert r["AP50"] == pytest.approx(1.0) and r["AP75"] == 0.0
    assert r["AP"] == pytest.approx(0.5)  # precision 1 at 5 of the 10 thresholds
    assert r["AR100"] == pytest.approx(0.5)


def test_duplicates_after_full_recall_cost_nothing_before_it_they_do():
    gt = [box(0, 10, 0, 10)]
    r = run(gt, [(gt[0], 0.9), (gt[0], 0.8)])  # second one: FP after recall 1
    assert r["AP"] == pytest.approx(1.0)
    # the better duplicate scores lower: IoU 0.6 (score 0.9) and 1.0 (score 0.8).
    # t <= 0.6: the first is a TP, precision 1 -> AP 1 (3 thresholds).
    # t > 0.6: FP then TP: precision [0, 0.5] made monotone [0.5, 0.5] -> AP 0.5 (7).
    r = run(gt, [(box(0, 10, 0, 6), 0.9), (gt[0], 0.8)])
    assert r["AP50"] == pytest.approx(1.0) and r["AP75"] == pytest.approx(0.5)
    assert r["AP"] == pytest.approx((3 * 1 + 7 * 0.5) / 10)


def test_missed_instance_halves_recall():
    gt = [box(0, 10, 0, 10), box(20, 30, 20, 30)]
    r = run(gt, [(gt[0], 0.7)])
    # recall 0.5 with precision 1: the recall points 0, 0.01, ..., 0.5 (51 of 101)
    assert r["AP"] == pytest.approx(51 / 101) and r["AR100"] == 0.5


def test_equal_scores_keep_their_given_order():
    gt = [box(0, 10, 0, 10)]
    fp, tp = box(40, 50, 40, 50), gt[0]
    assert run(gt, [(tp, 0.5), (fp, 0.5)])["AP"] == pytest.approx(1.0)
    assert run(gt, [(fp, 0.5), (tp, 0.5)])["AP"] == pytest.approx(0.5)  # [0, 0.5] -> 0.5


def test_crowd_gt_absorbs_detections_and_is_never_missed():
    crowd = box(30, 64, 0, 64)  # 2176 px
    gt = [box(0, 10, 0, 10), crowd]
    inside = box(40, 50, 10, 20)  # wholly in the crowd: IoU 100/100 = 1 -> ignored
    dets = [(inside, 0.95), (gt[0], 0.6)]
    r = run(gt, dets, crowd=np.array([False, True]))
    assert r["AP"] == pytest.approx(1.0) and r["AR100"] == 1.0
    # without the crowd flag both gts count: the crowd gt is missed and `inside` is a FP
    # ranked first: tp [0, 1], fp [1, 1], recall [0, 0.5] -> precision 0.5 up to recall 0.5
    r = run(gt, dets)
    assert r["AP"] == pytest.approx(0.5 * 51 / 101)
    # half inside the crowd: IoU 0.5 -> ignored at t = 0.5 only, a FP (first) above
    half = box(25, 35, 30, 40)
    r = run(gt, [(half, 0.95), (gt[0], 0.6)], crowd=np.array([False, True]))
    assert r["AP50"] == pytest.approx(1.0) and r["AP75"] == pytest.approx(0.5)
    assert r["AP"] == pytest.approx((1 + 9 * 0.5) / 10)


def test_area_ranges_and_given_areas():
    small, large = box(0, 4, 0, 4), box(0, 100, 0, 100, 128, 128)  # 16 px, 10000 px
    small = np.pad(small, ((0, 64), (0, 64)))
    metric = MaskAP([1])
    metric.update(np.stack([small, large]), [1, 1], small[None], [1], [0.9])
    r = metric.compute()
    assert r["APs"] == pytest.approx(1.0) and r["APl"] == 0.0 and math.isnan(r["APm"])
    assert r["ARs"] == 1.0 and r["ARl"] == 0.0
    assert r["AP"] == pytest.approx(51 / 101)
    metric = MaskAP([1])  # the small mask declared as 2000 px: a medium object
    metric.update(np.stack([small, large]), [1, 1], small[None], [1], [0.9], gt_area=[2000, 1e4])
    r = metric.compute()
    assert math.isnan(r["APs"]) and r["APm"] == pytest.approx(1.0)
    # an unmatched detection outside the range is ignored there: a large FP ranked first
    # leaves APm at 1 but halves AP (all areas: precision [0, 0.5] -> 0.5)
    metric = MaskAP([1])
    big_fp = box(28, 128, 28, 128, 128, 128)  # 10000 px, away from `small`
    metric.update(small[None], [1], np.stack([big_fp, small]), [1, 1], [0.99, 0.9], gt_area=[2000])
    r = metric.compute()
    assert r["APm"] == pytest.approx(1.0) and r["AP"] == pytest.approx(0.5)


def test_max_detections_per_image():
    gt = [box(0, 10, 0, 10)]
    fps = [(box(20 + i, 21 + i, 20, 30), 0.9 - i / 100) for i in range(10)]
    r = run(gt, [*fps, (gt[0], 0.5)])  # the true one is 11th by score
    assert r["AR1"] == 0.0 and r["AR10"] == 0.0 and r["AR100"] == 1.0
    assert r["AP"] == pytest.approx(1 / 11)  # precision 1/11 at recall 1


def test_classes_are_separate_and_per_class_ap():
    g = np.stack([box(0, 10, 0, 10), box(20, 30, 20, 30)])
    metric = MaskAP([1, 2, 3], ["a", "b", "c"])
    # class 1 found; class 2 detected with class 1's mask (IoU 0); class 3 has no gt
    metric.update(g, [1, 2], np.stack([g[0], g[0], g[1]]), [1, 2, 3], [0.9, 0.8, 0.7])
    r = metric.compute()
    assert r["per_class"]["a"] == pytest.approx(1.0) and r["per_class"]["b"] == 0.0
    assert r["per_class"]["c"] is None
    assert r["AP"] == pytest.approx(0.5)  # classes without gt are left out of the mean


def test_images_accumulate_in_order_and_merge():
    gt = [box(0, 10, 0, 10)]
    a, b = MaskAP([1]), MaskAP([1])
    a.update(np.stack(gt), [1], np.stack(gt), [1], [0.5])  # image 1: a TP at 0.5
    b.update(np.stack(gt), [1], box(40, 50, 40, 50)[None], [1], [0.5])  # image 2: FP at 0.5
    a.merge(b)
    # ties across images keep image order: tp [1, 1], fp [0, 1]; recall 0.5 at precision 1
    assert a.compute()["AP"] == pytest.approx(51 / 101)
    b.merge(MaskAP([1]))
    b.merge(a.images[:1])  # the other order: FP first, precision 0.5 up to recall 0.5
    assert b.compute()["AP"] == pytest.approx(0.5 * 51 / 101)
    a.reset()
    assert math.isnan(a.compute()["AP"])
    a.update([], [], [], [], [])  # an image with nothing in it
    a.update([], [], box(0, 9, 0, 9)[None], [1], [0.4])  # only a FP: no gt, AP undefined
    assert len(a.images) == 2 and a.images[0] == {} and math.isnan(a.compute()["AP"])


def test_instance_targets_and_update_maps():
    sem = np.zeros((8, 8), np.uint8)
    ins = np.zeros((8, 8), np.int32)
    sem[:4, :4], ins[:4, :4] = 2, 5  # a thing instance
    sem[4:, 4:] = 2  # class 2 pixels without instance: crowd
    sem[:2, 6:] = 255
    masks, classes, crowd = instance_targets(sem, ins, [2, 3], 255)
    assert classes.tolist() == [2, 2] and sorted(crowd.tolist()) == [False, True]
    assert masks[crowd][0].sum() == 16 and masks[~crowd][0].sum() == 16
    m = MaskAP([2, 3], ["car", "person"])
    m.update_maps(torch.from_numpy(sem), torch.from_numpy(ins), masks, [2, 2], [0.9, 0.8])
    r = m.compute()  # the detection on the crowd is ignored
    assert r["per_class"]["car"] == pytest.approx(1.0) and r["per_class"]["person"] is None


def test_functions_compose_like_the_metric():
    gt = np.stack([box(0, 10, 0, 10), box(20, 30, 20, 30)])
    dets = np.stack([box(0, 10, 0, 8), box(22, 30, 20, 30), box(50, 60, 50, 60)])
    ev = evaluate_image(gt, [1, 1], dets, [1, 1, 1], [0.3, 0.9, 0.5], [1])
    # sorted by score: IoU 0.8 (0.9), FP (0.5), IoU 0.8 (0.3); IoU 0.8 >= the threshold
    # 0.8 (linspace gives exactly 0.8): two TPs at the 7 thresholds 0.5 ... 0.8
    assert ev[1].scores.tolist() == [0.9, 0.5, 0.3]
    assert ev[1].matched[0, :, 0].tolist() == [True] * 7 + [False] * 3
    assert ev[1].matched[0, 0].tolist() == [True, False, True]
    assert ev[1].ignored.sum() == 2 * 3 * 10  # medium, large: all is small (< 32^2 px)
    precision, recall = accumulate([ev], [1])
    stats = summarize(precision, recall)
    assert len(stats) == len(STAT_NAMES)
    # precision [1, 0.5, 2/3] -> monotone [1, 2/3, 2/3]: 51 recall points at 1, 50 at 2/3
    ap_t = (51 + 50 * 2 / 3) / 101
    assert stats[0] == pytest.approx(7 * ap_t / 10, abs=1e-12)
    assert stats[1] == pytest.approx(ap_t) and recall[0, 0, 0, 2] == 1.0
    assert stats[3] == pytest.approx(stats[0]) and stats[4] == -1  # all small; no medium gt
