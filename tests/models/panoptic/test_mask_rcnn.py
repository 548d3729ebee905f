"""Tests for perpixel.models.panoptic.mask_rcnn."""

import numpy as np
import pytest
import torch

from perpixel.data.synthetic import generate
from perpixel.models.detection.roi_heads import Detections
from perpixel.models.panoptic.mask_rcnn import LOSSES, MaskRCNN

SMALL = {
    "widths": [8, 8, 16, 16],
    "fpn_channels": 16,
    "semantic_channels": 8,
    "box_hidden": 32,
    "mask_channels": 8,
    "mask_pool": 7,
}


def build(**over):
    torch.manual_seed(0)
    return MaskRCNN(**{**SMALL, **over})


def hand_target(batch, h, w):
    """Stuff 0 / 1 in halves, instances 1 (class 2) and 2 (class 3) as rectangles, a crowd
    patch of class 3, a void corner; `thing_ids` [2, 3]."""
    semantic = torch.zeros(batch, h, w, dtype=torch.long)
    semantic[:, h // 2 :] = 1
    instances = torch.zeros(batch, h, w, dtype=torch.long)
    semantic[:, 2 : h // 2, 2 : w // 3] = 2
    instances[:, 2 : h // 2, 2 : w // 3] = 1
    semantic[:, h // 3 : h - 2, w // 2 : w - 4] = 3
    instances[:, h // 3 : h - 2, w // 2 : w - 4] = 2
    semantic[:, h - 8 : h - 2, 2:10] = 3  # crowd
    semantic[:, :2, -2:] = 255
    return semantic, instances


@pytest.mark.parametrize("size", [(17, 29), (37, 53), (64, 64)])
@pytest.mark.parametrize("batch", [1, 3])
def test_forward_shapes(size, batch):
    model = build(num_classes=5, thing_ids=[3, 4]).eval()
    out = model(torch.rand(batch, 3, *size))
    assert set(out) == {"semantic"} and out["semantic"].shape == (batch, 5, *size)
    assert out["semantic"].dtype == torch.float32 and torch.isfinite(out["semantic"]).all()
    assert model.map_channels() == {"semantic": 5}
    gray = build(in_channels=1).eval()
    assert gray(torch.rand(1, 1, *size))["semantic"].shape == (1, 8, *size)
    assert MaskRCNN.exportable is False


def test_targets_from_maps():
    model = build(num_classes=4, thing_ids=[2, 3])
    semantic, instances = hand_target(1, 32, 48)
    instances[0, 20, 0] = 7  # an instance id on a stuff pixel: not an object
    (t,) = model.targets(semantic, instances)
    assert t.labels.tolist() == [1, 2]  # thing_ids [2, 3] -> labels 1, 2
    torch.testing.assert_close(
        t.boxes, torch.tensor([[2.0, 2.0, 16.0, 16.0], [24.0, 10.0, 44.0, 30.0]])
    )
    assert t.masks.shape == (2, 32, 48) and int(t.masks[0].sum()) == 14 * 14
    assert t.crowd is not None and float(t.crowd[-1, -1]) == 6 * 8  # the crowd patch's pixels
    (t,) = model.targets(
        torch.zeros(1, 8, 8, dtype=torch.long), torch.zeros(1, 8, 8, dtype=torch.long)
    )
    assert t.boxes.shape == (0, 4) and t.crowd is None


def test_losses_finite_and_every_parameter_learns():
    model = build(num_classes=4, thing_ids=[2, 3]).train()
    image = torch.rand(2, 3, 64, 64)
    losses = model.losses(image, *hand_target(2, 64, 64))
    assert tuple(losses) == LOSSES
    assert all(torch.isfinite(v) and v.dim() == 0 and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_losses_without_instances():
    """Images of stuff only, or with crowd and void only: no boxes, finite losses."""
    model = build(num_classes=4, thing_ids=[2, 3]).train()
    semantic = torch.zeros(2, 32, 32, dtype=torch.long)
    semantic[1, 4:20, 4:20] = 3  # crowd: a thing class with instance 0
    semantic[1, 25:, 25:] = 255
    losses = model.losses(
        torch.rand(2, 3, 32, 32), semantic, torch.zeros(2, 32, 32, dtype=torch.long)
    )
    assert all(torch.isfinite(v) for v in losses.values())
    assert (
        losses["mask"].item() == 0 and losses["box"].item() == 0 and losses["rpn_box"].item() == 0
    )
    sum(losses.values()).backward()


def test_loss_weights_scale_the_terms():
    image, (semantic, instances) = torch.rand(2, 3, 64, 64), hand_target(2, 64, 64)
    weights = {"rpn_cls": 2.0, "rpn_box": 1.0, "cls": 0.5, "box": 1.0, "mask": 0.0, "semantic": 3.0}
    model = build(num_classes=4, thing_ids=[2, 3])
    weighted = build(num_classes=4, thing_ids=[2, 3], loss_weights=weights)
    torch.manual_seed(1)  # the same anchor and proposal samples
    a = model.losses(image, semantic, instances)
    torch.manual_seed(1)
    b = weighted.losses(image, semantic, instances)
    for k in LOSSES:
        torch.testing.assert_close(b[k], a[k] * weights[k])
    with pytest.raises(ValueError, match="loss_weights"):
        build(loss_weights={"masks": 1.0})
    with pytest.raises(ValueError, match="rpn_strides"):
        build(rpn_strides=[32])


def fake_detect(model, boxes, scores, labels, masks, semantic):
    dets = Detections(torch.tensor(boxes), torch.tensor(scores), torch.tensor(labels), masks)
    model.detect = lambda image: ([dets], semantic)


def test_predict_merges_instances_over_the_semantic_map():
    model = build(num_classes=4, thing_ids=[2, 3]).eval()
    h, w = 20, 30
    semantic = torch.zeros(1, 4, h, w)
    semantic[0, 0] = 1.0
    semantic[0, 3, 15:, 20:] = 2.0  # thing class 3 that no instance covers
    ones = torch.ones(4, 14, 14)
    fake_detect(
        model,
        [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 4.0, 10.0, 14.0],
            [6.0, 0.0, 16.0, 10.0],
            [20.0, 0.0, 30.0, 5.0],
        ],
        [0.9, 0.8, 0.7, 0.3],
        [1, 2, 2, 1],
        ones,
        semantic,
    )
    (out,) = model.predict(torch.rand(1, 3, h, w))
    # detection 1 keeps only 40% of its mask (dropped), detection 2 60%; 3 scores below 0.5
    assert out.masks.shape == (4, h, w) and out.masks.dtype == torch.bool
    assert out.classes.tolist() == [2, 3, 3, 2]
    assert out.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.3])
    want = torch.zeros(h, w, dtype=torch.long)
    want[0:10, 0:10] = 1
    want[0:10, 10:16] = 2
    assert torch.equal(out.instances, want)
    want_sem = torch.zeros(h, w, dtype=torch.long)
    want_sem[15:, 20:] = 3  # uncovered thing pixels: semantic class 3, instance 0
    want_sem[0:10, 0:10] = 2
    want_sem[0:10, 10:16] = 3
    assert torch.equal(out.semantic, want_sem)


def test_predict_output_types():
    model = build(num_classes=4, thing_ids=[2, 3], score_thresh=0.0).eval()
    outs = model.predict(torch.rand(2, 3, 40, 56))
    assert len(outs) == 2
    for o in outs:
        n = len(o.scores)
        assert o.semantic.shape == o.instances.shape == (40, 56) and o.semantic.dtype == torch.long
        assert o.masks.shape == (n, 40, 56) and o.masks.dtype == torch.bool
        assert o.classes.dtype == torch.long and set(o.classes.tolist()) <= {2, 3}
        assert o.scores.dtype == torch.float32 and (o.scores[:-1] >= o.scores[1:]).all()


def synthetic(n):
    s = [generate(0, i) for i in range(n)]
    img = torch.tensor(np.stack([x.image for x in s])).permute(0, 3, 1, 2).float() / 255
    sem = torch.tensor(np.stack([x.semantic for x in s])).long()
    return img, sem, torch.tensor(np.stack([x.instances for x in s])).long()


def test_overfits_two_images():
    image, semantic, instances = synthetic(2)
    torch.manual_seed(0)
    model = MaskRCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    history = []
    for _ in range(150):
        losses = model.losses(image, semantic, instances)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert np.mean(history[-10:]) < 0.25 * np.mean(history[:5])
    model.eval()
    for out, sem, inst in zip(model.predict(image), semantic, instances, strict=True):
        for g in inst.unique()[1:]:
            gt = inst == g
            ious = [
                (gt & (out.instances == j)).sum() / (gt | (out.instances == j)).sum()
                for j in out.instances.unique()[1:]
            ]
            best = int(np.argmax(ious))
            assert ious[best] > 0.5
            assert out.semantic[out.instances == best + 1][0] == sem[gt][0]  # the right class
