"""Tests for perpixel.models.detection.boxes."""

import math

import pytest
import torch

from perpixel.models.detection import boxes as boxes_module
from perpixel.models.detection.boxes import (
    batched_nms,
    box_area,
    box_coverage,
    box_iou,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    masks_to_boxes,
    nms,
    remove_small_boxes,
    summed_area,
)


def random_boxes(g, n, size=100.0):
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * size
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * size / 3 + 0.5
    return torch.cat([xy, xy + wh], 1)


def iou_py(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms_brute_force(boxes, scores, thresh):
    """The textbook greedy loop over Python floats."""
    b, s = boxes.tolist(), scores.tolist()
    order = sorted(range(len(s)), key=lambda i: (-s[i], i))
    keep = []
    for i in order:
        if all(iou_py(b[i], b[j]) <= thresh for j in keep):
            keep.append(i)
    return keep


def test_area_and_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 4.0, 2.0], [1.0, 1.0, 1.0, 5.0]])
    b = torch.tensor([[2.0, 0.0, 6.0, 2.0], [10.0, 10.0, 11.0, 11.0]])
    torch.testing.assert_close(box_area(a), torch.tensor([8.0, 0.0]))
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[4 / 12, 0.0], [0.0, 0.0]]))
    g = torch.Generator().manual_seed(0)
    x, y = random_boxes(g, 7), random_boxes(g, 5)
    want = torch.tensor([[iou_py(p, q) for q in y.tolist()] for p in x.tolist()], dtype=x.dtype)
    torch.testing.assert_close(box_iou(x, y), want)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coder_round_trip(weights):
    g = torch.Generator().manual_seed(1)
    ref, target = random_boxes(g, 50), random_boxes(g, 50)
    deltas = encode_boxes(target, ref, weights)
    torch.testing.assert_close(decode_boxes(deltas, ref, weights), target)
    # a centred box twice as wide: dw = log 2 scaled by the weight
    d = encode_boxes(
        torch.tensor([[-2.0, -1.0, 2.0, 1.0]]), torch.tensor([[-1.0, -1.0, 1.0, 1.0]]), weights
    )
    torch.testing.assert_close(d, torch.tensor([[0.0, 0.0, weights[2] * math.log(2), 0.0]]))


def test_decode_clamps_the_size():
    ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    out = decode_boxes(torch.tensor([[0.0, 0.0, 100.0, 0.0]]), ref, (1, 1, 1, 1), clamp=math.log(4))
    torch.testing.assert_close(out, torch.tensor([[-15.0, 0.0, 25.0, 10.0]]))
    # class-specific deltas broadcast against one reference box per row
    many = decode_boxes(torch.zeros(1, 3, 4), ref[:, None], (10, 10, 5, 5))
    assert many.shape == (1, 3, 4) and torch.equal(many[0, 2], ref[0])


@pytest.mark.parametrize("seed", range(25))
def test_nms_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 120, (1,), generator=g))
    b = random_boxes(g, n, size=60.0)
    # integer scores: many ties, which go to the lower index
    scores = (
        torch.randint(0, 10, (n,), generator=g).double()
        if seed % 2
        else torch.rand(n, generator=g, dtype=torch.float64)
    )
    for thresh in (0.0, 0.3, 0.5, 0.7):
        assert nms(b, scores, thresh).tolist() == nms_brute_force(b, scores, thresh)
    assert nms(b, scores, 0.5, max_output=3).tolist() == nms_brute_force(b, scores, 0.5)[:3]


def test_nms_blocks_and_empty(monkeypatch):
    g = torch.Generator().manual_seed(7)
    b, s = random_boxes(g, 90, 50.0), torch.rand(90, generator=g, dtype=torch.float64)
    want = nms_brute_force(b, s, 0.4)
    monkeypatch.setattr(boxes_module, "NMS_BLOCK", 8)
    assert nms(b, s, 0.4).tolist() == want
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)


@pytest.mark.parametrize("seed", range(10))
def test_batched_nms_is_nms_per_group(seed):
    g = torch.Generator().manual_seed(100 + seed)
    n = 80
    b, s = random_boxes(g, n, 40.0), torch.rand(n, generator=g, dtype=torch.float64)
    groups = torch.randint(0, 3, (n,), generator=g)
    got = batched_nms(b, s, groups, 0.5)
    want = []
    for k in range(3):
        idx = torch.nonzero(groups == k).flatten()
        want += idx[nms_brute_force(b[idx], s[idx], 0.5)].tolist()
    want.sort(key=lambda i: -float(s[i]))
    assert got.tolist() == want
    assert (s[got][:-1] >= s[got][1:]).all()


def test_clip_remove_small_masks_to_boxes():
    b = torch.tensor([[-5.0, 2.0, 50.0, 70.0], [3.0, 3.0, 3.5, 9.0]])
    torch.testing.assert_close(
        clip_boxes(b, (60, 40)), torch.tensor([[0.0, 2.0, 40.0, 60.0], [3.0, 3.0, 3.5, 9.0]])
    )
    assert remove_small_boxes(b, 1.0).tolist() == [0]
    masks = torch.zeros(3, 6, 8, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 5, 7] = True
    got = masks_to_boxes(masks)
    torch.testing.assert_close(
        got, torch.tensor([[2.0, 1.0, 5.0, 3.0], [7.0, 5.0, 8.0, 6.0], [0.0, 0.0, 0.0, 0.0]])
    )


def test_box_coverage_counts_pixel_centres():
    g = torch.Generator().manual_seed(3)
    mask = torch.rand(20, 30, generator=g) > 0.6
    table = summed_area(mask)
    b = torch.tensor([[2.3, 4.6, 17.8, 12.2], [-5.0, -5.0, 40.0, 40.0], [50.0, 50.0, 60.0, 60.0]])
    got = box_coverage(table, b)
    for k, (x1, y1, x2, y2) in enumerate(b.tolist()):
        ys = [y for y in range(20) if y1 <= y + 0.5 < y2]
        xs = [x for x in range(30) if x1 <= x + 0.5 < x2]
        want = mask[ys][:, xs].float().mean() if ys and xs else torch.tensor(0.0)
        torch.testing.assert_close(got[k], want)
