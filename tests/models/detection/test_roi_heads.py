"""Tests for perpixel.models.detection.roi_heads: sampling, targets, losses, detection, paste."""

import torch

from perpixel.models.detection.boxes import summed_area
from perpixel.models.detection.roi_heads import (
    BoxHead,
    MaskHead,
    RoIHeads,
    Targets,
    paste_masks,
    to_rois,
)


def make_heads(**kw):
    torch.manual_seed(0)
    conf = dict(hidden=16, mask_channels=8, mask_convs=2, mask_pool=7, batch_size=16)
    return RoIHeads(6, 2, box_stride=8, mask_stride=4, **{**conf, **kw})


def one_target(h=64, w=64):
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 8:24, 4:36] = True  # box (4, 8, 36, 24)
    masks[1, 30:60, 40:56] = True  # box (40, 30, 56, 60)
    boxes = torch.tensor([[4.0, 8.0, 36.0, 24.0], [40.0, 30.0, 56.0, 60.0]])
    return Targets(boxes, torch.tensor([1, 2]), masks)


def test_sample_by_hand():
    heads = make_heads(batch_size=8, positive_fraction=0.5)
    t = one_target()
    proposals = torch.tensor(
        [
            [4.0, 8.0, 30.0, 24.0],  # IoU 26/32 with box 0: object, class 1
            [40.0, 40.0, 56.0, 60.0],  # IoU 20/30 with box 1: class 2
            [0.0, 40.0, 20.0, 60.0],  # background
            [20.0, 8.0, 52.0, 24.0],  # IoU 1/3 with box 0: background
        ]
    )
    boxes, labels, matched = heads.sample(proposals, t)
    # the ground-truth boxes join the proposals: 4 positives, 2 negatives
    assert len(boxes) == 6 and (labels > 0).sum() == 4
    assert labels.tolist()[:4] == matched[:4].add(1).tolist()
    got = {tuple(b.tolist()): int(lab) for b, lab in zip(boxes, labels, strict=True)}
    assert got[(4.0, 8.0, 30.0, 24.0)] == 1 and got[(40.0, 40.0, 56.0, 60.0)] == 2
    assert got[(0.0, 40.0, 20.0, 60.0)] == 0 and got[(20.0, 8.0, 52.0, 24.0)] == 0
    assert (matched[labels == 0] == -1).all()
    # a crowd region under proposal 2: no longer a background example
    crowd = torch.zeros(64, 64, dtype=torch.bool)
    crowd[40:60, 0:20] = True
    t.crowd = summed_area(crowd)
    boxes, labels, _ = heads.sample(proposals, t)
    assert len(boxes) == 5 and [0.0, 40.0, 20.0, 60.0] not in boxes.tolist()


def test_losses_and_mask_targets():
    heads = make_heads()
    t = one_target()
    feats8, feats4 = torch.rand(1, 6, 8, 8), torch.rand(1, 6, 16, 16)
    losses = heads(feats8, feats4, [torch.tensor([[0.0, 0.0, 30.0, 30.0]])], (64, 64), [t])
    assert set(losses) == {"cls", "box", "mask"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    for name, p in heads.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # no ground truth: everything background, the mask loss is 0
    empty = Targets(
        torch.zeros(0, 4),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, 64, 64, dtype=torch.bool),
    )
    losses = heads(feats8, feats4, [torch.tensor([[0.0, 0.0, 30.0, 30.0]])], (64, 64), [empty])
    assert losses["mask"].item() == 0 and losses["box"].item() == 0 and losses["cls"].item() > 0


def test_mask_head_learns_the_target():
    """A positive RoI on a rectangle's own box: the target is all ones, so the mask BCE falls."""
    heads = make_heads(batch_size=4)
    t = one_target()
    feats8, feats4 = torch.rand(1, 6, 8, 8), torch.rand(1, 6, 16, 16)
    opt = torch.optim.Adam(heads.mask_head.parameters(), lr=1e-2)
    for _ in range(40):
        loss = heads(feats8, feats4, [t.boxes.clone()], (64, 64), [t])["mask"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_detect_shapes_and_order():
    heads = make_heads(score_thresh=0.0, detections_per_image=5).eval()
    proposals = [
        torch.tensor([[0.0, 0.0, 30.0, 30.0], [10.0, 10.0, 50.0, 40.0]]),
        torch.zeros(0, 4),
    ]
    dets = heads(torch.rand(2, 6, 8, 8), torch.rand(2, 6, 16, 16), proposals, (64, 64))
    assert len(dets) == 2 and len(dets[1].boxes) == 0 and dets[1].masks.shape == (0, 14, 14)
    d = dets[0]
    assert 1 <= len(d.boxes) <= 4 and d.masks.shape == (len(d.boxes), 14, 14)
    assert set(d.labels.tolist()) <= {1, 2} and (d.scores[:-1] >= d.scores[1:]).all()
    assert (d.masks >= 0).all() and (d.masks <= 1).all()


def test_heads_shapes():
    logits, deltas = BoxHead(4, 7, 3, 16)(torch.rand(5, 4, 7, 7))
    assert logits.shape == (5, 4) and deltas.shape == (5, 4, 4)
    head = MaskHead(4, 3, 8, 2)
    x = torch.rand(5, 4, 14, 14)
    out = head(x)
    assert out.shape == (5, 3, 28, 28)
    with torch.no_grad():  # the fast path = transposed conv, ReLU, 1x1 conv
        torch.testing.assert_close(out, head.logits(torch.relu(head.deconv(head.convs(x)))))
    labels = torch.tensor([2, 0, 1, 1, 0])
    torch.testing.assert_close(head(x, labels), out[torch.arange(5), labels])
    rois = to_rois([torch.ones(2, 4), torch.zeros(1, 4)])
    assert rois[:, 0].tolist() == [0, 0, 1] and rois.shape == (3, 5)


def test_paste_masks():
    box = torch.tensor([[10.2, 5.7, 30.4, 20.3], [0.0, 0.0, 8.0, 8.0]])
    ones = torch.ones(2, 14, 14)
    ones[1, :, 7:] = 0  # the left half only
    got = paste_masks(ones, box, (24, 40))
    want = torch.zeros(2, 24, 40, dtype=torch.bool)
    want[0, 6:20, 10:30] = True  # pixels whose centres lie in the box
    want[1, 0:8, 0:4] = True
    assert torch.equal(got, want)
    assert paste_masks(torch.zeros(0, 14, 14), torch.zeros(0, 4), (5, 6)).shape == (0, 5, 6)
