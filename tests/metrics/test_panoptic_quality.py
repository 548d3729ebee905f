"""Tests for perpixel.metrics.panoptic_quality: PQ as COCO panopticapi / cityscapesScripts.

Classes: 0 road, 1 sky (stuff), 2 car, 3 person (things); 255 void. Maps are 10 x 10 unless
said; every expected number is worked out in the test."""

import json
from collections import defaultdict

import numpy as np
import pytest
import torch
from PIL import Image

from perpixel.data.panoptic import Segment, id_to_rgb, to_segments
from perpixel.metrics.panoptic_quality import (
    PanopticQuality,
    PQStats,
    pq_compute_files,
    pq_from_stats,
    pq_stats,
    pq_stats_from_maps,
)

NAMES = ["road", "sky", "car", "person"]
THINGS = [2, 3]
C = 4


def stats_of(pred_sem, pred_ins, sem, ins) -> PQStats:
    return pq_stats_from_maps(pred_sem, pred_ins, sem, ins, THINGS, 255, C)


def scene():
    """road everywhere, a car instance (rows 2-5, cols 2-6: 20 px), a person (rows 6-8,
    cols 6-9: 9 px)."""
    sem, ins = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.int32)
    sem[2:6, 2:7], ins[2:6, 2:7] = 2, 1
    sem[6:9, 6:9], ins[6:9, 6:9] = 3, 2
    return sem, ins


def test_perfect_prediction_is_one():
    sem, ins = scene()
    s = stats_of(sem, ins, sem, ins)
    assert s.tp.tolist() == [1, 0, 1, 1] and s.fp.sum() == 0 and s.fn.sum() == 0
    r = pq_from_stats(s, NAMES, THINGS)
    assert r["pq"] == r["sq"] == r["rq"] == 1.0 and r["n"] == 3  # sky absent: left out
    assert r["n_things"] == 2 and r["n_stuff"] == 1
    assert r["per_class"]["sky"] == {"pq": None, "sq": None, "rq": None, "tp": 0, "fp": 0, "fn": 0}


def test_split_instance_one_tp_one_fp():
    # car (20 px) predicted as two instances: cols 2-4 (12 px, IoU 12/20 = 0.6) and 5-6 (8 px)
    sem, ins = scene()
    psem, pins = sem.copy(), ins.copy()
    pins[2:6, 5:7] = 9
    s = stats_of(psem, pins, sem, ins)
    assert (s.tp[2], s.fp[2], s.fn[2]) == (1, 1, 0)
    assert s.iou[2] == pytest.approx(0.6)
    car = pq_from_stats(s, NAMES, THINGS)["per_class"]["car"]
    assert car["sq"] == pytest.approx(0.6)
    assert car["rq"] == pytest.approx(1 / 1.5)
    assert car["pq"] == pytest.approx(0.6 / 1.5)  # = 0.4
    r = pq_from_stats(s, NAMES, THINGS)
    # road: pred road = gt road, IoU 1; person IoU 1; things mean (0.4 + 1) / 2
    assert r["pq_things"] == pytest.approx(0.7) and r["pq_stuff"] == 1.0
    assert r["pq"] == pytest.approx((1 + 0.4 + 1) / 3)


def test_missed_instance_is_fn_and_iou_threshold_is_strict():
    sem, ins = scene()
    psem, pins = sem.copy(), ins.copy()
    psem[6:9, 6:9], pins[6:9, 6:9] = 0, 0  # person missed: road grows by 9 px
    pins[2:6, 2:7] = 0  # car keeps 10 of its 20 px, IoU = 10/20 = 0.5: not > 0.5
    psem[2:6, 2:7] = 0
    psem[2:6, 2:4], pins[2:6, 2:4] = 2, 1  # 8 px
    psem[2:4, 4], pins[2:4, 4] = 2, 1  # + 2 px = 10 px
    s = stats_of(psem, pins, sem, ins)
    assert (s.tp[3], s.fn[3], s.fp[3]) == (0, 1, 0)
    assert (s.tp[2], s.fn[2], s.fp[2]) == (0, 1, 1)
    # road: gt 71 px, pred 71 + 9 + 10 = 90 px, intersection 71: IoU 71/90
    assert s.tp[0] == 1 and s.iou[0] == pytest.approx(71 / 90)
    r = pq_from_stats(s, NAMES, THINGS)
    assert r["per_class"]["person"]["pq"] == 0.0 and r["per_class"]["car"]["pq"] == 0.0
    assert r["pq"] == pytest.approx((71 / 90) / 3)


def test_void_pixels_leave_the_union():
    # gt: car of 40 px (rows 0-3, cols 0-9), void rows 4-6 (30 px), road below
    sem, ins = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.int32)
    sem[:4], ins[:4] = 2, 1
    sem[4:7] = 255
    # pred car: 24 px of the gt car (rows 1-3, cols 2-9) + all 30 void px = 54 px
    psem, pins = np.zeros_like(sem), np.zeros_like(ins)
    psem[:4], pins[:4] = 1, 0  # the rest of the gt car predicted as sky
    psem[1:4, 2:], pins[1:4, 2:] = 2, 5
    psem[4:7], pins[4:7] = 2, 5
    s = stats_of(psem, pins, sem, ins)
    # union = 54 + 40 - 24 - 30 (pred on void) = 40: IoU 24/40 = 0.6 > 0.5, a TP
    # (the union with the void pixels, 70, would give 24/70 = 0.34 and no match)
    assert s.tp[2] == 1 and s.iou[2] == pytest.approx(0.6)
    # sky: pred 16 px on gt car, gt has no sky: a FP; road matched exactly
    assert s.fp[1] == 1 and s.tp[0] == 1 and s.iou[0] == 1.0


@pytest.mark.parametrize("on_void, fp", [(6, 0), (5, 1), (4, 1)])
def test_unmatched_pred_on_void_is_not_fp_above_half(on_void, fp):
    # pred person of 10 px in row 0: `on_void` of them on gt void, the rest on road
    sem, ins = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.int32)
    sem[0, :on_void] = 255
    psem, pins = np.zeros_like(sem), np.zeros_like(ins)
    psem[0], pins[0] = 3, 1
    s = stats_of(psem, pins, sem, ins)
    assert s.fp[3] == fp  # ignored only when void / area > 0.5 (5/10 is a FP)
    # road: gt 100 - on_void px, pred rows 1-9 (90 px, none on void): IoU 90 / (100 - on_void)
    assert s.tp[0] == 1 and s.iou[0] == pytest.approx(90 / (100 - on_void))


def test_crowd_rules():
    # gt: a car crowd (rows 0-2: 30 px, car pixels with instance 0), void row 3, road below
    sem, ins = np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.int32)
    sem[:3] = 2
    sem[3] = 255
    psem, pins = np.zeros_like(sem), np.zeros_like(ins)
    psem[:3, :5], pins[:3, :5] = 2, 1  # car, 15 px on the crowd: ignored, not matched
    psem[:3, 5:], pins[:3, 5:] = 3, 2  # person, 15 px on the car crowd: a FP
    # car of 10 px: 3 on crowd + 3 on void + 4 on road: (3 + 3) / 10 > 0.5, ignored
    psem[2, 7:], pins[2, 7:] = 2, 3
    psem[3, 7:], pins[3, 7:] = 2, 3
    psem[4, 6:], pins[4, 6:] = 2, 3
    s = stats_of(psem, pins, sem, ins)
    assert s.tp[2] == 0 and s.fn[2] == 0 and s.fp[2] == 0  # a crowd is never TP or FN
    assert s.fp[3] == 1
    r = pq_from_stats(s, NAMES, THINGS)
    assert r["per_class"]["car"]["pq"] is None  # no tp, fp, fn: not averaged


def test_one_crowd_region_per_class_last_listed_wins():
    # two crowd segments of class car (ids 5 and 6); pred car (10 px) lies on segment 5
    gt = np.zeros((4, 10), np.int64)
    gt[0], gt[1], gt[2:] = 5, 6, 7
    pred = np.zeros((4, 10), np.int64)
    pred[0], pred[1:] = 1, 2
    pred_segs = {1: Segment(2), 2: Segment(0)}
    first = {5: Segment(2, True), 6: Segment(2, True), 7: Segment(0)}
    last = {6: Segment(2, True), 5: Segment(2, True), 7: Segment(0)}
    assert pq_stats(gt, first, pred, pred_segs, C).fp[2] == 1  # region 6 is the class's crowd
    assert pq_stats(gt, last, pred, pred_segs, C).fp[2] == 0  # region 5 is


def test_gt_areas_are_used_when_given():
    gt, pred = np.ones((2, 5), np.int64), np.ones((2, 5), np.int64)
    pred[0, :2] = 2  # pred 1: 8 px on gt 1 (10 px): IoU 0.8; with area 20: 8 / 20 = 0.4
    segs, psegs = {1: Segment(2)}, {1: Segment(2), 2: Segment(0)}
    assert pq_stats(gt, segs, pred, psegs, C).iou[2] == pytest.approx(0.8)
    s = pq_stats(gt, segs, pred, psegs, C, gt_areas={1: 20})
    assert s.tp[2] == 0 and s.fn[2] == 1


def test_errors_match_the_reference_checks():
    gt, pred = np.ones((2, 2), np.int64), np.ones((2, 2), np.int64)
    with pytest.raises(ValueError, match="not in the segments"):
        pq_stats(gt, {1: Segment(0)}, pred, {}, C)
    with pytest.raises(ValueError, match="not in the map"):
        pq_stats(gt, {1: Segment(0)}, pred, {1: Segment(0), 4: Segment(1)}, C)
    with pytest.raises(ValueError, match="not in 0..C-1"):
        pq_stats(gt, {1: Segment(7)}, pred, {1: Segment(0)}, C)


def reference_pq(gt, gsegs, pred, psegs):
    """A literal port of pq_compute_single_core's loops over dicts (per-class stats)."""
    off = 1 << 24
    stat = defaultdict(lambda: [0.0, 0, 0, 0])
    keys, cnt = np.unique(gt.astype(np.uint64) * off + pred.astype(np.uint64), return_counts=True)
    m = {(int(k) // off, int(k) % off): int(c) for k, c in zip(keys, cnt, strict=True)}
    lab, lc = np.unique(pred, return_counts=True)
    parea = dict(zip(lab.tolist(), lc.tolist(), strict=True))
    glab, gc = np.unique(gt, return_counts=True)
    garea = dict(zip(glab.tolist(), gc.tolist(), strict=True))
    gm, pm = set(), set()
    for (g, p), i in m.items():
        if g not in gsegs or p not in psegs or gsegs[g].iscrowd:
            continue
        if gsegs[g].category != psegs[p].category:
            continue
        iou = i / (parea[p] + garea.get(g, 0) - i - m.get((0, p), 0))
        if iou > 0.5:
            stat[gsegs[g].category][0] += iou
            stat[gsegs[g].category][1] += 1
            gm.add(g), pm.add(p)
    crowd = {}
    for g, s in gsegs.items():
        if g in gm:
            continue
        if s.iscrowd:
            crowd[s.category] = g
            continue
        stat[s.category][3] += 1
    for p, s in psegs.items():
        if p in pm:
            continue
        i = m.get((0, p), 0) + (m.get((crowd[s.category], p), 0) if s.category in crowd else 0)
        if i / parea[p] > 0.5:
            continue
        stat[s.category][2] += 1
    return stat


def random_maps(rng, h=32, w=48):
    """Blocky random (semantic, instances) with void and crowd pixels, and a shifted copy."""
    sem = rng.integers(0, C, (h // 8, w // 8)).repeat(8, 0).repeat(8, 1).astype(np.uint8)
    ins = rng.integers(0, 4, (h // 8, w // 8)).repeat(8, 0).repeat(8, 1).astype(np.int32)
    sem[rng.random((h, w)) < 0.05] = 255
    shift = rng.integers(-3, 4, 2)
    return sem, ins, np.roll(sem, shift, (0, 1)), np.roll(ins, shift, (0, 1))


def test_random_maps_agree_with_a_port_of_the_reference():
    rng = np.random.default_rng(0)
    total = PQStats.zeros(C)
    for _ in range(30):
        sem, ins, psem, pins = random_maps(rng)
        psem[psem == 255] = 0
        gi, gs = to_segments(sem, ins, THINGS, 255)
        pi, ps = to_segments(psem, pins, THINGS, 255)
        ref = reference_pq(gi, gs, pi, ps)
        # from to_segments' maps, and from the maps directly (its own one-pass segment ids)
        for ours in (pq_stats(gi, gs, pi, ps, C), stats_of(psem, pins, sem, ins)):
            for c in range(C):
                iou, tp, fp, fn = ref[c] if c in ref else (0.0, 0, 0, 0)
                assert (ours.tp[c], ours.fp[c], ours.fn[c]) == (tp, fp, fn)
                assert ours.iou[c] == pytest.approx(iou, abs=1e-12)
        total += ours
    assert total.tp.sum() > 20 and total.fp.sum() > 20 and total.fn.sum() > 20


def test_maps_with_huge_instance_ids_and_bad_classes():
    rng = np.random.default_rng(4)
    sem, ins, psem, pins = random_maps(rng)
    a = stats_of(psem, pins, sem, ins)
    big = stats_of(psem, pins * 10**6, sem, ins * 10**6)  # too many ids: via to_segments
    assert all(np.array_equal(getattr(a, f), getattr(big, f)) for f in ("iou", "tp", "fp", "fn"))
    psem[0, 0] = C  # not a class
    with pytest.raises(ValueError, match="class 4 outside"):
        stats_of(psem, pins, sem, ins)


def test_rgb_maps_give_the_same_stats_as_ids():
    rng = np.random.default_rng(1)
    sem, ins, psem, pins = random_maps(rng)
    gi, gs = to_segments(sem, ins, THINGS, 255)
    pi, ps = to_segments(psem, pins, THINGS, 255)
    big = {k: k * 40961 + 70000 for k in range(1, 64)}  # ids over 2^16: all three channels
    gi2 = np.vectorize(lambda v: big.get(v, 0))(gi)
    pi2 = np.vectorize(lambda v: big.get(v, 0))(pi)
    a = pq_stats(gi, gs, pi, ps, C)
    b = pq_stats(id_to_rgb(gi2), {big[k]: v for k, v in gs.items()},
                 id_to_rgb(pi2), {big[k]: v for k, v in ps.items()}, C)  # fmt: skip
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("iou", "tp", "fp", "fn"))


def coco_files(tmp_path) -> None:
    """gt.json + gt/a.png, pred.json + pred/a.png: `scene` and its car split in two."""
    sem, ins = scene()
    psem, pins = sem.copy(), ins.copy()
    pins[2:6, 5:7] = 9  # the split car of test_split_instance_one_tp_one_fp
    docs = {"gt": {"annotations": [], "categories": []}, "pred": {"annotations": []}}
    docs["gt"]["categories"] = [
        {"id": 10 + c, "name": n, "isthing": int(c in THINGS)} for c, n in enumerate(NAMES)
    ]
    for name, (s, k) in {"gt": (sem, ins), "pred": (psem, pins)}.items():
        (tmp_path / name).mkdir()
        ids, segs = to_segments(s, k, THINGS, 255)
        Image.fromarray(id_to_rgb(ids * 1000)).save(tmp_path / name / "a.png")
        info = [{"id": i * 1000, "category_id": 10 + g.category, "iscrowd": int(g.iscrowd)}
                for i, g in segs.items()]  # fmt: skip
        docs[name]["annotations"].append(
            {"image_id": "a", "file_name": "a.png", "segments_info": info}
        )
        (tmp_path / f"{name}.json").write_text(json.dumps(docs[name]))


def test_files_as_coco_panoptic(tmp_path):
    coco_files(tmp_path)
    for workers in (1, 2):
        stats, cats = pq_compute_files(
            tmp_path / "gt.json", tmp_path / "pred.json", workers=workers
        )
        r = pq_from_stats(stats, {c["id"]: c["name"] for c in cats}, [12, 13])
        assert r["per_class"]["car"]["pq"] == pytest.approx(0.4)
        assert r["pq"] == pytest.approx((1 + 0.4 + 1) / 3)


def test_pq_command_prints_and_writes_scores(tmp_path, capsys):
    from perpixel.cli import main

    coco_files(tmp_path)
    gt, pred, out = (str(tmp_path / f) for f in ("gt.json", "pred.json", "pq.json"))
    assert main(["panoptic", "pq", gt, pred, "--workers", "1", "--out", out]) == 0
    assert "All          80.0" in capsys.readouterr().out  # (1 + 0.4 + 1) / 3
    assert json.loads((tmp_path / "pq.json").read_text())["per_class"]["car"][
        "pq"
    ] == pytest.approx(0.4)
    (tmp_path / "pred" / "a.png").unlink()
    assert main(["panoptic", "pq", gt, pred, "--out", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a.png" in err[0] and "not found" in err[0]
    assert not (tmp_path / "bad.json").exists()


def test_metric_streams_batches_and_merges_states():
    rng = np.random.default_rng(3)
    maps = [random_maps(rng) for _ in range(4)]
    total = PQStats.zeros(C)
    for sem, ins, psem, pins in maps:
        total += stats_of(psem, pins, sem, ins)
    expect = pq_from_stats(total, NAMES, THINGS)

    def batch(idx, j):
        return torch.from_numpy(np.stack([maps[i][j] for i in idx]).astype(np.int64))

    m = PanopticQuality(NAMES, THINGS)
    m.update(batch([0, 1], 2), batch([0, 1], 3), batch([0, 1], 0), batch([0, 1], 1))
    m.update(*(torch.from_numpy(maps[2][j].astype(np.int64)) for j in (2, 3, 0, 1)))
    other = PanopticQuality(NAMES, THINGS)  # another process's share
    other.update(*(maps[3][j] for j in (2, 3, 0, 1)))
    m.merge_state(other)
    r = m.compute()
    assert r["pq"] == pytest.approx(expect["pq"]) and r["n"] == expect["n"]
    for name in NAMES:
        assert r["per_class"][name] == pytest.approx(expect["per_class"][name])
    assert 0.1 < r["pq"] < 0.9
    assert m.tp.tolist() == total.tp.tolist() and m.fn.tolist() == total.fn.tolist()
