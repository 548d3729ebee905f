"""Tests for perpixel.metrics.instance: iIoU and category scores (cityscapesScripts' protocol)."""

import math

import numpy as np
import pytest
import torch

from perpixel.data.formats.cityscapes_labels import AVG_CLASS_SIZE, CITYSCAPES
from perpixel.metrics.confusion import confusion_matrix
from perpixel.metrics.instance import (
    InstanceMetrics,
    InstanceRecords,
    instance_records,
    instance_scores,
    joint_counts,
)

IGN = 255


def two_people() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """10x20 image, class 0 = background, 1 = person. Instance 1: 90 px (found), instance 2:
    10 px (missed), 5 background pixels predicted person, one void row (ignored)."""
    sem = torch.zeros(10, 20, dtype=torch.long)
    inst = torch.zeros(10, 20, dtype=torch.long)
    sem[:9, :10] = 1
    inst[:9, :10] = 1
    sem[:1, 10:20] = 1
    inst[:1, 10:20] = 2
    sem[9] = IGN
    pred = sem.clone()
    pred[9] = 1  # void: neither FP nor anything
    pred[:1, 10:20] = 0  # the small person is missed
    pred[5, 15:20] = 1  # 5 false positive pixels
    return pred, sem, inst


def scores(pred, sem, inst, things=(1,), lut=None, **kw):
    c = int(max(sem[sem != IGN].max(), pred[pred < IGN].max())) + 1
    c = kw.pop("c", c)
    cm = confusion_matrix(pred, sem, c, IGN)
    rec = instance_records(pred, sem, inst, things, lut, IGN)
    return instance_scores(cm, rec, things, category_lut=lut, **kw)


def test_missed_small_instance_costs_iiou_more_than_iou():
    pred, sem, inst = two_people()
    cm = confusion_matrix(pred, sem, 2, IGN)
    iou = cm[1, 1].item() / (cm[1].sum() + cm[:, 1].sum() - cm[1, 1]).item()
    assert iou == pytest.approx(90 / 105)
    out = scores(pred, sem, inst)
    # average size 50: weights 50/90 and 50/10 -> iTP = 50, iFN = 50, FP = 5
    assert out["avg_instance_size"] == {"1": 50.0}
    assert out["per_class_iiou"]["1"] == pytest.approx(50 / 105)
    assert out["miiou"] == pytest.approx(50 / 105)
    assert out["num_instances"] == {"1": 2}
    assert out["per_class_iiou"]["1"] < iou - 0.3


def test_given_average_size_by_name_and_id():
    pred, sem, inst = two_people()
    by_name = scores(pred, sem, inst, names=["bg", "person"], avg_sizes={"person": 20.0})
    # weights 20/90 and 20/10 -> iTP = 20, iFN = 20
    assert by_name["per_class_iiou"]["person"] == pytest.approx(20 / 45)
    assert scores(pred, sem, inst, avg_sizes={1: 20.0})["miiou"] == pytest.approx(20 / 45)
    with pytest.raises(ValueError, match="no size for instance classes"):
        scores(pred, sem, inst, avg_sizes={"car": 20.0}, names=["bg", "person"])


def test_records_of_one_image():
    pred, sem, inst = two_people()
    pred[0, 0] = 7  # outside the classes: right for nobody
    rec = instance_records(pred, sem, inst, [1])
    assert rec.cls.tolist() == [1, 1]
    assert rec.size.tolist() == [90, 10]
    assert rec.tp.tolist() == [89, 0]
    assert rec.cat_tp.tolist() == [89, 0]


def test_crowd_pixels_are_not_instances():
    pred, sem, inst = two_people()
    sem[5, 15:20] = 1  # the 5 "false positives" become a crowd region, predicted person
    sem[6, 15:20] = 1  # and 5 more crowd pixels, predicted background
    rec = instance_records(pred, sem, inst, [1])
    assert rec.size.tolist() == [90, 10]
    out = scores(pred, sem, inst)
    # crowd pixels: no FP any more, no weighted term either
    assert out["per_class_iiou"]["1"] == pytest.approx(50 / 100)
    cm = confusion_matrix(pred, sem, 2, IGN)
    assert cm[1, 1] == 95 and cm[1, 0] == 15  # but IoU sees them


def test_stuff_instances_and_void_are_skipped():
    pred, sem, inst = two_people()
    inst[8, 15] = 9  # an id on a background pixel: stuff, not an instance
    inst[9, 0] = 9  # and on a void pixel
    assert instance_records(pred, sem, inst, [1]).size.tolist() == [90, 10]
    assert instance_records(pred, sem, inst, []).size.numel() == 0


def test_large_instance_ids_equal_small_ones():
    pred, sem, inst = two_people()
    big = torch.where(inst > 0, inst * (1 << 40) + 12345, 0)
    a = instance_records(pred, sem, inst, [1], torch.tensor([0, 1]))
    b = instance_records(pred, sem, big, [1], torch.tensor([0, 1]))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_class_without_instances():
    pred, sem, inst = two_people()
    # class 2 (a thing): no instances, never predicted -> undefined, left out of the mean
    out = scores(pred, sem, inst, things=(1, 2), c=3)
    assert out["per_class_iiou"]["2"] is None
    assert out["miiou"] == pytest.approx(50 / 105)
    pred[0, 0] = 2  # now predicted once: iIoU 0, and it counts
    out = scores(pred, sem, inst, things=(1, 2), c=3)
    assert out["per_class_iiou"]["2"] == 0.0
    itp = 89 * 50 / 90  # the pixel predicted 2 was a person pixel
    assert out["miiou"] == pytest.approx(itp / (itp + 5 + 50 / 90 + 50) / 2)


def test_category_merging():
    # classes: 0 road (flat), 1 pole (object, stuff), 2 sign (object, thing),
    # 3 person, 4 rider (human, things)
    lut = np.array([0, 1, 1, 2, 2])
    sem = torch.zeros(4, 10, dtype=torch.long)
    inst = torch.zeros(4, 10, dtype=torch.long)
    sem[0, :8], inst[0, :8] = 3, 1  # person of 8 px
    sem[1, :2], inst[1, :2] = 4, 2  # rider of 2 px
    sem[2, :4], inst[2, :4] = 2, 3  # sign of 4 px
    sem[3, :3] = 1  # pole
    pred = sem.clone()
    pred[0, :4] = 4  # half the person predicted rider: right category
    pred[1, :1] = 0  # half the rider predicted road
    pred[3, 8:] = 3  # 2 road pixels predicted person: category FP
    out = scores(pred, sem, inst, things=(2, 3, 4), lut=lut, category_names=["f", "o", "h"])
    # class level, one instance per class -> weight 1:
    #   person iTP 4, iFN 4, FP (column 3 minus the diagonal) 2
    assert out["per_class_iiou"]["3"] == pytest.approx(4 / (4 + 2 + 4))
    #   rider avg 2 -> weight 1: iTP 1, iFN 1, FP 4 (the person pixels)
    assert out["per_class_iiou"]["4"] == pytest.approx(1 / (1 + 4 + 1))
    # category human: person 8/8 right, rider 1/2; FP only from other categories: 2
    assert out["per_category_iiou"] == {"h": pytest.approx(9 / (9 + 2 + 1))}
    assert out["category_miiou"] == pytest.approx(9 / 12)  # "o" mixes stuff: no iIoU
    # category IoU: human tp 9, fn 1, fp 2; object all right; flat below
    assert out["per_category_iou"]["h"] == pytest.approx(9 / 12)
    assert out["per_category_iou"]["o"] == 1.0
    flat = (40 - 17 - 2) / (40 - 17 + 1)  # road gt 23, 2 lost; 1 rider pixel predicted road
    assert out["per_category_iou"]["f"] == pytest.approx(flat)
    assert out["category_miou"] == pytest.approx((flat + 1 + 9 / 12) / 3)


def reference_port(pairs, thing_ids, lut):
    """cityscapesScripts' instance loop, literally: one boolean mask per instance (the
    average sizes from a first pass)."""
    sizes: dict = {c: [] for c in thing_ids}
    for _, sem, inst in pairs:
        for i in np.unique(inst[inst > 0]):
            mask = inst == i
            if int(sem[mask][0]) in thing_ids:
                sizes[int(sem[mask][0])].append(mask.sum())
    avg = {c: np.mean(v) for c, v in sizes.items()}
    stats = {c: [0.0, 0.0] for c in thing_ids}
    cats = {k: [0.0, 0.0] for k in set(lut[list(thing_ids)])}
    for pred, sem, inst in pairs:
        for i in np.unique(inst[inst > 0]):
            mask = inst == i
            c = int(sem[mask][0])
            if c not in thing_ids:
                continue
            size = mask.sum()
            tp = (pred[mask] == c).sum()
            cat_tp = np.isin(pred[mask], np.nonzero(lut == lut[c])[0]).sum()
            w = avg[c] / size
            stats[c][0] += tp * w
            stats[c][1] += (size - tp) * w
            cats[lut[c]][0] += cat_tp * w
            cats[lut[c]][1] += (size - cat_tp) * w
    return stats, cats


def random_pairs(n, c, rng, h=40, w=50):
    out = []
    for _ in range(n):
        sem = rng.integers(0, 3, (h, w))
        inst = np.zeros((h, w), np.int64)
        for k in range(1, 8):
            y, x = rng.integers(0, h - 5), rng.integers(0, w - 5)
            dy, dx = rng.integers(1, 12, 2)
            sem[y : y + dy, x : x + dx] = rng.integers(3, c)
            inst[y : y + dy, x : x + dx] = k
        sem[rng.random((h, w)) < 0.05] = IGN
        inst[sem == IGN] = 0
        pred = np.where(rng.random((h, w)) < 0.3, rng.integers(0, c, (h, w)), sem)
        pred[pred == IGN] = 0
        out.append((pred, sem, inst))
    return out


def test_against_a_port_of_the_reference_loop_and_streaming():
    rng = np.random.default_rng(0)
    c, things = 6, (3, 4, 5)
    lut = np.array([0, 0, 1, 2, 2, 3])
    pairs = random_pairs(4, c, rng)
    metric = InstanceMetrics(c, things, IGN, category_lut=lut)
    batch = InstanceMetrics(c, things, IGN, category_lut=lut)
    for p, s, i in pairs:
        metric.update(torch.from_numpy(p), torch.from_numpy(s), torch.from_numpy(i))
    batch.update(*(torch.from_numpy(np.stack(a)) for a in zip(*pairs, strict=True)))
    got, got_batch = metric.compute(), batch.compute()
    assert got == got_batch
    recs = InstanceRecords.cat([instance_records(p, s, i, things, lut) for p, s, i in pairs])
    assert recs.cls.numel() == sum(got_batch["num_instances"].values())
    stats, cats = reference_port(pairs, things, lut)
    cm = np.asarray(metric.confmat, np.float64)
    for t in things:
        fp = cm[:, t].sum() - cm[t, t]
        itp, ifn = stats[t]
        assert got["per_class_iiou"][str(t)] == pytest.approx(itp / (itp + fp + ifn))
    assert set(got["per_category_iiou"]) == {"2", "3"}  # the all-thing categories
    for k in (2, 3):
        other = lut != k
        itp, ifn = cats[k]
        fp = cm[np.ix_(other, ~other)].sum()
        assert got["per_category_iiou"][str(k)] == pytest.approx(itp / (itp + fp + ifn))
    assert got["miou"] == pytest.approx(np.mean([v for v in got["per_class_iou"].values()]))
    assert math.isclose(got["miiou"], np.mean(list(got["per_class_iiou"].values())))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_joint_counts_equal_the_two_calls(dtype):
    rng = np.random.default_rng(1)
    lut = np.array([0, 0, 1, 2, 2, 3])
    for p, s, i in random_pairs(3, 6, rng):
        p, s, i = torch.from_numpy(p).to(dtype), torch.from_numpy(s).to(dtype), torch.from_numpy(i)
        for cats in (lut, None):
            cm, rec = joint_counts(p, s, i, 6, (5, 3, 4), cats)
            assert torch.equal(cm, confusion_matrix(p, s, 6))
            want = instance_records(p, s, i, (3, 4, 5), cats)
            assert all(torch.equal(a, b) for a, b in zip(rec, want, strict=True))
            assert rec.size.sum() == (i > 0).sum()  # every instance pixel is a thing here
        big = torch.where(i > 0, i + (1 << 40), 0)  # too sparse for a table: the two calls
        _, rec = joint_counts(p, s, big, 6, (3, 4, 5), lut)
        assert torch.equal(rec.size, instance_records(p, s, i, (3, 4, 5)).size)
    p[0, 0] = 6
    with pytest.raises(ValueError, match="predicted ids outside"):
        joint_counts(p, s, i, 6, (3, 4, 5))


def test_from_taxonomy_cityscapes():
    metric = InstanceMetrics.from_taxonomy(CITYSCAPES, avg_sizes=AVG_CLASS_SIZE)
    sem = torch.full((8, 8), IGN)
    inst = torch.zeros(8, 8, dtype=torch.long)
    sem[:4] = 13  # a car of 32 px, all found
    inst[:4] = 26001
    sem[4:] = 0
    metric.update(sem.clone(), sem, inst)
    out = metric.compute()
    assert out["per_class_iiou"]["car"] == 1.0
    assert out["per_class_iiou"]["person"] is None
    assert set(out["per_category_iiou"]) == {"human", "vehicle"}
    assert out["per_category_iiou"]["vehicle"] == 1.0 and out["category_miiou"] == 1.0
    assert out["avg_instance_size"]["car"] == AVG_CLASS_SIZE["car"]
    assert out["miou"] == 1.0


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_empty_metric_computes():
    out = InstanceMetrics(3, [2]).compute()
    assert out["per_class_iiou"] == {"2": None}
    assert math.isnan(out["miiou"])
