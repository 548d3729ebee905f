"""Tests for perpixel.models.detection.rpn: matching, sampling, assignment, proposals, losses."""

import torch

from perpixel.models.detection.boxes import box_iou, summed_area
from perpixel.models.detection.rpn import (
    BELOW_LOW,
    BETWEEN,
    RegionProposalNetwork,
    RPNHead,
    match,
    sample_labels,
)


def test_match_thresholds_and_low_quality():
    iou = torch.tensor(
        [
            [0.9, 0.5, 0.1, 0.0, 0.25],  # box 0
            [0.2, 0.65, 0.2, 0.0, 0.1],  # box 1: best prediction 1 (0.65 < 0.7)
        ]
    )
    assert match(iou, 0.7, 0.3).tolist() == [0, BETWEEN, BELOW_LOW, BELOW_LOW, BELOW_LOW]
    # box 1 claims prediction 1, its best; box 0 already has prediction 0
    assert match(iou, 0.7, 0.3, True).tolist() == [0, 1, BELOW_LOW, BELOW_LOW, BELOW_LOW]
    # ties: every prediction at a box's maximum is claimed
    tie = torch.tensor([[0.2, 0.2, 0.1]])
    assert match(tie, 0.7, 0.3, True).tolist() == [0, 0, BELOW_LOW]
    assert match(torch.zeros(0, 4), 0.7, 0.3, True).tolist() == [BELOW_LOW] * 4
    assert match(torch.zeros(1, 3), 0.7, 0.3, True).tolist() == [BELOW_LOW] * 3  # IoU 0 claims none


def test_sample_labels_balance():
    labels = torch.tensor([1] * 10 + [0] * 100 + [-1] * 20)
    pos, neg = sample_labels(labels, 16, 0.25, torch.Generator().manual_seed(0))
    assert len(pos) == 4 and len(neg) == 12
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    assert len(set(pos.tolist())) == 4 and len(set(neg.tolist())) == 12
    pos, neg = sample_labels(torch.tensor([1, 0, 0, -1]), 256, 0.5)
    assert len(pos) == 1 and len(neg) == 2  # too few: everything there is


def make_rpn(**kw):
    torch.manual_seed(0)
    return RegionProposalNetwork(8, [[16, 32]], [1.0], [8], **kw)


def test_assign_by_hand():
    rpn = make_rpn()
    anchors = torch.tensor(
        [
            [0.0, 0.0, 16.0, 16.0],  # = the gt box: object
            [4.0, 0.0, 20.0, 16.0],  # IoU 0.6: ignored
            [40.0, 40.0, 56.0, 56.0],  # far: background
            [8.0, 0.0, 24.0, 16.0],  # IoU 1/3: ignored
            [40.0, 0.0, 56.0, 16.0],  # background, but inside the crowd region
        ]
    )
    gt = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    labels, targets = rpn.assign(anchors, [gt])
    assert labels.tolist() == [[1, -1, 0, -1, 0]]
    assert torch.equal(targets[0, 0], torch.zeros(4)) and (targets[0, 1:] == 0).all()
    crowd = torch.zeros(64, 64, dtype=torch.bool)
    crowd[0:16, 38:60] = True
    labels, _ = rpn.assign(anchors, [gt], [summed_area(crowd)])
    assert labels.tolist() == [[1, -1, 0, -1, -1]]
    # no boxes at all: every anchor is background
    labels, targets = rpn.assign(anchors, [torch.zeros(0, 4)])
    assert labels.tolist() == [[0] * 5] and (targets == 0).all()


def test_head_shapes_and_anchor_order():
    head = RPNHead(8, 3)
    logits, deltas = head([torch.rand(2, 8, 4, 6), torch.rand(2, 8, 2, 3)])
    assert [t.shape for t in logits] == [(2, 72), (2, 18)]
    assert [t.shape for t in deltas] == [(2, 72, 4), (2, 18, 4)]
    x = torch.rand(1, 8, 4, 6)
    raw = head.objectness(torch.relu(head.conv(x)))  # (1, A, h, w)
    assert torch.equal(head([x])[0][0][0, (2 * 6 + 5) * 3 + 1], raw[0, 1, 2, 5])


def test_proposals_and_losses():
    rpn = make_rpn(pre_nms_top_n=(50, 20), post_nms_top_n=(30, 10))
    feats = [torch.rand(2, 8, 8, 8)]
    gt = [torch.tensor([[4.0, 6.0, 30.0, 40.0]]), torch.zeros(0, 4)]
    proposals, losses = rpn(feats, (64, 64), gt)
    assert set(losses) == {"rpn_cls", "rpn_box"} and all(torch.isfinite(v) for v in losses.values())
    assert [len(p) <= 30 for p in proposals] == [True, True]
    for p in proposals:
        assert (p[:, 0::2] >= 0).all() and (p[:, 0::2] <= 64).all()
        assert (box_iou(p, p).triu(1) <= 0.7).all()  # after NMS
    rpn.eval()
    proposals, losses = rpn(feats, (64, 64))
    assert losses == {} and all(len(p) <= 10 for p in proposals)


def test_losses_train_objectness():
    rpn = make_rpn()
    feats = [torch.rand(1, 8, 8, 8)]
    gt = [torch.tensor([[8.0, 8.0, 40.0, 40.0]])]
    opt = torch.optim.SGD(rpn.parameters(), lr=0.5)
    first = None
    for _ in range(30):
        _, losses = rpn(feats, (64, 64), gt)
        loss = sum(losses.values())
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
