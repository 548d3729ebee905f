"""Tests for perpixel.models.panoptic.grouping."""

import math

import numpy as np
import pytest
import torch

from perpixel.data.synthetic import SYNTHETIC, generate
from perpixel.models.panoptic.grouping import (
    find_centers,
    group_pixels,
    instance_scores,
    is_thing,
    merge_panoptic,
    panoptic_targets,
)

THINGS = SYNTHETIC.thing_ids  # [4, 5, 6, 7]


def synthetic(index: int, size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    s = generate(3, index, height=size, width=size)
    sem = torch.from_numpy(s.semantic.astype(np.int64))
    return sem, torch.from_numpy(s.instances.astype(np.int64))


def same_up_to_renumbering(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether id maps `a` and `b` have the same segments (0 = 0 on both)."""
    pairs = torch.unique(torch.stack([a.flatten(), b.flatten()]), dim=1)
    one_to_one = pairs.shape[1] == torch.unique(a).numel() == torch.unique(b).numel()
    return one_to_one and bool(((pairs[0] == 0) == (pairs[1] == 0)).all())


def touching(ins: torch.Tensor) -> int:
    """The number of 4-neighbour pixel pairs of two different instances."""
    h = (ins[:, 1:] != ins[:, :-1]) & (ins[:, 1:] > 0) & (ins[:, :-1] > 0)
    v = (ins[1:] != ins[:-1]) & (ins[1:] > 0) & (ins[:-1] > 0)
    return int(h.sum() + v.sum())


# ------------------------------------------------------------ targets


def one_rectangle() -> tuple[torch.Tensor, torch.Tensor]:
    """A 40x50 map: stuff 0, a thing (class 4, instance 9) on rows 5..14, columns 10..29, a
    crowd thing (class 5, instance 0) on rows 30..33, a void pixel at (0, 0)."""
    sem = torch.zeros(1, 40, 50, dtype=torch.long)
    ins = torch.zeros_like(sem)
    sem[0, 5:15, 10:30], ins[0, 5:15, 10:30] = 4, 9
    sem[0, 30:34, 40:45] = 5
    sem[0, 0, 0] = 255
    return sem, ins


def test_targets_of_one_instance():
    sem, ins = one_rectangle()
    t = panoptic_targets(sem, ins, THINGS, sigma=3.0)
    assert t.center.shape == (1, 1, 40, 50) and t.offset.shape == (1, 2, 40, 50)
    assert t.center_weight.shape == t.offset_weight.shape == (1, 1, 40, 50)
    assert t.semantic_weight.shape == (1, 40, 50)
    cy, cx = 9.5, 19.5  # the centre of mass; its Gaussian sits at the rounded (10, 20)
    assert t.center[0, 0, 10, 20] == 1.0
    assert t.center.flatten().argmax().item() == 10 * 50 + 20
    torch.testing.assert_close(t.center[0, 0, 12, 21], torch.tensor(math.exp(-5 / 18)))
    assert t.center[0, 0, 10, 20 + 10] > 0 and t.center[0, 0, 10, 20 + 11] == 0  # r = 3s + 1
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(50.0), indexing="ij")
    inside = ins[0] == 9
    torch.testing.assert_close(t.offset[0, 0][inside], (cy - ys)[inside])  # (dy, dx)
    torch.testing.assert_close(t.offset[0, 1][inside], (cx - xs)[inside])
    assert (t.offset[:, :, ~inside] == 0).all()
    assert torch.equal(t.offset_weight[0, 0], inside.float())
    # centre weights: 0 on void and crowd, 1 elsewhere
    expected = torch.ones(40, 50)
    expected[30:34, 40:45] = 0
    expected[0, 0] = 0
    assert torch.equal(t.center_weight[0, 0], expected)
    assert (t.semantic_weight == 1).all()


def test_small_instances_weigh_more_in_the_semantic_loss():
    sem, ins = one_rectangle()
    sem[0, 20:24, 0:5], ins[0, 20:24, 0:5] = 6, 3  # 20 pixels
    t = panoptic_targets(sem, ins, THINGS, small_instance_area=100, small_instance_weight=3.0)
    w = t.semantic_weight[0]
    assert (w[20:24, 0:5] == 3).all() and (w[5:15, 10:30] == 1).all()
    assert int((w == 3).sum()) == 20


def test_targets_ignore_instance_ids_off_things_and_take_any_ids():
    sem, ins = one_rectangle()
    ins[0, 20:25, 0:10] = 4  # on stuff: not an instance
    big = ins.clone()
    big[big == 9] = 123456
    a, b = panoptic_targets(sem, ins, THINGS), panoptic_targets(sem, big, THINGS)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert (a.offset_weight[0, 0, 20:25, 0:10] == 0).all()
    assert int(find_centers(a.center[0]).shape[0]) == 1


def test_batch_items_are_independent():
    items = [synthetic(i) for i in range(3)]
    sem, ins = torch.stack([s for s, _ in items]), torch.stack([i for _, i in items])
    batch = panoptic_targets(sem, ins, THINGS)
    for k in range(3):
        alone = panoptic_targets(sem[k : k + 1], ins[k : k + 1], THINGS)
        for x, y in zip(batch, alone, strict=True):
            assert torch.equal(x[k : k + 1], y)


def test_offsets_point_to_the_centres():
    sem, ins = synthetic(4)
    t = panoptic_targets(sem[None], ins[None], THINGS)
    ys, xs = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    for k in range(1, int(ins.max()) + 1):
        m = ins == k
        votes_y, votes_x = (ys + t.offset[0, 0])[m], (xs + t.offset[0, 1])[m]
        centre = torch.stack([ys[m].mean(), xs[m].mean()])
        torch.testing.assert_close(votes_y, centre[0].expand_as(votes_y), atol=1e-4, rtol=0)
        torch.testing.assert_close(votes_x, centre[1].expand_as(votes_x), atol=1e-4, rtol=0)
        r = centre.round().long()
        assert t.center[0, 0, r[0], r[1]] == 1.0


# ------------------------------------------------------------ centres, grouping, merging


@pytest.mark.parametrize("size", [96, 128])
def test_grouping_recovers_the_instances_exactly_from_perfect_maps(size):
    n_touching = 0
    for index in range(8):
        sem, ins = synthetic(index, size)
        n_touching += touching(ins) > 0
        t = panoptic_targets(sem[None], ins[None], THINGS)
        centers = find_centers(t.center[0])
        assert centers.shape == (int(ins.max()), 2)
        ids = group_pixels(centers, t.offset[0], is_thing(sem, THINGS))
        sem2, ins2 = merge_panoptic(sem, ids, THINGS)
        assert torch.equal(sem2, sem)
        assert same_up_to_renumbering(ins2, ins), index
    assert n_touching >= 4  # the samples include touching (occluding) things


def test_find_centers_nms_threshold_and_top_k():
    hm = torch.zeros(1, 30, 30)
    hm[0, 10, 10], hm[0, 12, 12] = 0.9, 0.8  # within a 7x7 window: the lower one goes
    hm[0, 10, 20] = 0.5
    hm[0, 25, 5] = 0.7
    hm[0, 25, 25] = 0.05  # below the threshold
    got = find_centers(hm, threshold=0.1, nms_kernel=7)
    assert got.tolist() == [[10, 10], [25, 5], [10, 20]]  # highest first
    assert find_centers(hm, nms_kernel=3).tolist() == [[10, 10], [12, 12], [25, 5], [10, 20]]
    assert find_centers(hm, top_k=2).tolist() == [[10, 10], [25, 5]]
    assert find_centers(hm[0], threshold=0.95).shape == (0, 2)


def test_group_pixels_goes_to_the_nearest_centre_of_the_vote():
    centers = torch.tensor([[2, 2], [2, 8]])
    offsets = torch.zeros(2, 5, 10)
    offsets[1, :, 4] = 3.0  # column 4 votes for column 7: the second centre
    mask = torch.ones(5, 10, dtype=torch.bool)
    mask[:, 0] = False
    ids = group_pixels(centers, offsets, mask)
    assert ids.dtype == torch.int64
    assert (ids[:, 0] == 0).all()
    assert (ids[:, 1:4] == 1).all() and (ids[:, 4] == 2).all() and (ids[:, 6:] == 2).all()
    assert (ids[:, 5] == 1).all()  # equally far: the first centre
    assert torch.equal(group_pixels(centers, offsets, mask, chunk=3), ids)
    assert (group_pixels(centers[:0], offsets, mask) == 0).all()


def test_merge_votes_renumbers_and_removes_small_stuff():
    sem = torch.zeros(6, 8, dtype=torch.long)
    sem[0, 0] = 1  # a 1-pixel stuff class
    sem[2:5, 1:4] = torch.tensor([[4, 4, 5], [4, 5, 5], [4, 4, 6]])  # 5 x 4, 3 x 5, 1 x 6
    sem[2:4, 6:8] = torch.tensor([[5, 6], [6, 5]])  # a tie: the lower class
    sem[5, 7] = 7  # a thing pixel left without an instance
    ins = torch.zeros_like(sem)
    ins[2:5, 1:4], ins[2:4, 6:8] = 40, 7
    ins[0, 0] = 3  # on stuff: dropped
    before = sem.clone()
    out_sem, out_ins = merge_panoptic(sem, ins, THINGS, stuff_area=2)
    assert (out_sem[2:5, 1:4] == 4).all() and (out_sem[2:4, 6:8] == 5).all()
    assert (out_ins[2:4, 6:8] == 1).all() and (out_ins[2:5, 1:4] == 2).all()  # id order
    assert out_sem[0, 0] == 255 and out_ins[0, 0] == 0
    assert out_sem[5, 7] == 7 and out_ins[5, 7] == 0
    assert int((out_ins > 0).sum()) == 13 and int(out_ins.max()) == 2
    assert (out_sem[out_ins == 0] == torch.where(sem == 1, 255, sem)[out_ins == 0]).all()
    kept, _ = merge_panoptic(sem, ins, THINGS, stuff_area=1, ignore_index=99)
    assert kept[0, 0] == 1
    assert merge_panoptic(sem, ins, THINGS, stuff_area=2, ignore_index=99)[0][0, 0] == 99
    assert torch.equal(sem, before)  # the input is left alone


def test_instance_scores():
    ins = torch.zeros(4, 6, dtype=torch.long)
    ins[0:2, 0:3], ins[2:4, 3:6] = 1, 2
    sem = torch.zeros_like(ins)
    sem[ins == 1], sem[ins == 2] = 4, 6
    probs = torch.full((8, 4, 6), 0.1)
    probs[4, 0:2, 0:3] = torch.tensor([[0.2, 0.4, 0.6], [0.8, 1.0, 0.6]])
    probs[6, 2:4, 3:6] = 0.5
    center = torch.zeros(1, 4, 6)
    center[0, 0, 1] = 0.5  # instance 1's centroid (0.5, 1) truncates to (0, 1)
    center[0, 2, 4] = 1.7  # clamped to 1
    masks, classes, scores = instance_scores(ins, sem, probs, center)
    assert masks.dtype == torch.bool and masks.shape == (2, 4, 6)
    assert torch.equal(masks[0], ins == 1) and torch.equal(masks[1], ins == 2)
    assert classes.tolist() == [4, 6]
    torch.testing.assert_close(scores, torch.tensor([0.6 * 0.5, 0.5]))
    none = instance_scores(torch.zeros_like(ins), sem, probs, center)
    assert none[0].shape == (0, 4, 6) and none[1].shape == (0,) and none[2].shape == (0,)
