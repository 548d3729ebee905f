"""Tests for perpixel.models.panoptic.panoptic_deeplab (imported directly, not by name)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perpixel.data.synthetic import SYNTHETIC, generate
from perpixel.models.panoptic.base import PanopticOutput
from perpixel.models.panoptic.grouping import panoptic_targets
from perpixel.models.panoptic.panoptic_deeplab import PanopticDeepLab

TINY = {
    "backbone": "resnet18",
    "backbone_widths": [4, 4, 6, 8],
    "aspp_rates": [2, 4, 6],
    "aspp_channels": 8,
    "semantic_channels": 8,
    "semantic_project": [4, 4],
    "semantic_head_channels": 8,
    "instance_channels": 8,
    "instance_project": [4, 4],
    "instance_head_channels": 4,
    "num_classes": 4,
    "thing_ids": [2, 3],
    "sigma": 3.0,
    "stuff_area": 0,
}


def tiny(**conf) -> PanopticDeepLab:
    torch.manual_seed(0)
    return PanopticDeepLab(**{**TINY, **conf})


def target(batch: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stuff 0 / 1 in halves, things of classes 2 and 3 (instances 1, 2), a void corner."""
    sem = torch.zeros(batch, h, w, dtype=torch.long)
    sem[:, h // 2 :] = 1
    ins = torch.zeros_like(sem)
    sem[:, 1 : h // 2, 1 : w // 3], ins[:, 1 : h // 2, 1 : w // 3] = 2, 1
    sem[:, h // 3 : h - 1, w // 2 : w - 1], ins[:, h // 3 : h - 1, w // 2 : w - 1] = 3, 2
    sem[:, :2, -2:] = 255
    return sem, ins


@pytest.mark.parametrize("size", [(17, 29), (37, 53), (64, 64)])
def test_output_shapes_at_any_size(size):
    model = tiny()
    out = model(torch.rand(2, 3, *size))
    assert model.map_channels() == {"semantic": 4, "center": 1, "offset": 2}
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "semantic": (2, 4, *size),
        "center": (2, 1, *size),
        "offset": (2, 2, *size),
    }
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())


def test_output_stride_8_and_aspp_rates():
    model = tiny(output_stride=8)
    assert list(model.backbone.strides) == [2, 4, 8, 8, 8]
    dilations = [b[0].dilation[0] for b in model.semantic_decoder.aspp.branches[1:]]
    assert dilations == [4, 8, 12]  # rates given at output stride 16, doubled at 8
    assert model(torch.rand(1, 3, 21, 19))["offset"].shape == (1, 2, 21, 19)


def test_losses_are_finite_and_reach_every_parameter():
    model = tiny().train()
    losses = model.losses(torch.rand(2, 3, 37, 53), *target(2, 37, 53))
    assert set(losses) == {"semantic", "center", "offset"}
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_loss_values():
    model = tiny(top_k_percent=0.25, center_loss_weight=10.0, offset_loss_weight=0.5)
    model.conf["small_instance_area"] = 0
    sem, ins = target(1, 20, 24)
    t = panoptic_targets(sem, ins, [2, 3], sigma=3.0)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 4, 20, 24, generator=g)
    center = t.center.clone()
    center[..., :10, :] += 0.5  # 10 x 24 pixels, four of them void
    offset = t.offset + torch.tensor([1.0, -2.0]).view(1, 2, 1, 1)
    model.forward = lambda image: {"semantic": logits, "center": center, "offset": offset}
    losses = model.losses(torch.rand(1, 3, 20, 24), sem, ins)
    valid = sem != 255
    ce = -logits.log_softmax(1).gather(1, sem.clamp(max=3)[:, None])[:, 0] * valid
    want = ce.flatten().sort(descending=True).values[: int(0.25 * 480)].mean()
    torch.testing.assert_close(losses["semantic"], want)
    torch.testing.assert_close(losses["center"], torch.tensor(10.0 * 0.25 * 236 / 476))
    torch.testing.assert_close(losses["offset"], torch.tensor(0.5 * 3.0))
    plain = tiny(top_k_percent=1.0, small_instance_area=1000, small_instance_weight=2.0)
    plain.forward = model.forward
    weight = torch.where(ins > 0, 2.0, 1.0)  # both instances are small
    want = (ce * weight).mean()  # void pixels count as 0, as the reference
    torch.testing.assert_close(plain.losses(torch.rand(1, 3, 20, 24), sem, ins)["semantic"], want)


def assert_consistent(p: PanopticOutput, h: int, w: int, thing_ids: list[int]) -> None:
    """The instances and masks of one prediction agree with its panoptic map."""
    assert p.semantic.shape == p.instances.shape == (h, w)
    assert p.semantic.dtype == p.instances.dtype == torch.int64
    n = int(p.instances.max())
    assert p.masks.shape == (n, h, w) and p.masks.dtype == torch.bool
    assert p.classes.shape == p.scores.shape == (n,) and p.scores.dtype == torch.float32
    assert torch.isin(p.semantic[p.instances > 0], torch.tensor(thing_ids)).all()
    assert torch.equal(torch.unique(p.instances), torch.arange(n + 1))
    for k in range(n):
        assert torch.equal(p.masks[k], p.instances == k + 1)
        assert (p.semantic[p.masks[k]] == p.classes[k]).all()
    assert ((p.scores >= 0) & (p.scores <= 1)).all()


def test_predict_outputs_are_consistent():
    model = tiny(center_threshold=-1.0).eval()  # every local maximum is a centre
    for head in (model.semantic_head, model.center_head, model.offset_head):
        torch.nn.init.normal_(head[-1].weight)  # not the near-zero initial outputs
    preds = model.predict(torch.rand(2, 3, 33, 41))
    assert len(preds) == 2
    for p in preds:
        assert_consistent(p, 33, 41, [2, 3])
    assert sum(int(p.instances.max()) for p in preds) > 0  # something to check
    assert all(int(p.instances.max()) == 0 for p in tiny().eval().predict(torch.rand(1, 3, 9, 9)))


def synthetic_batch(n: int, size: int, seed: int = 3) -> tuple[torch.Tensor, ...]:
    samples = [generate(seed, i, height=size, width=size) for i in range(n)]
    image = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in samples])
    sem = torch.stack([torch.from_numpy(s.semantic.astype(np.int64)) for s in samples])
    ins = torch.stack([torch.from_numpy(s.instances.astype(np.int64)) for s in samples])
    return image, sem, ins


def test_postprocess_of_perfect_maps_is_the_ground_truth():
    _, sem, ins = synthetic_batch(3, 64)
    things = SYNTHETIC.thing_ids
    model = PanopticDeepLab(num_classes=8, thing_ids=things, stuff_area=0)
    t = panoptic_targets(sem, ins, things, sigma=8.0)
    logits = 10 * F.one_hot(sem, 8).permute(0, 3, 1, 2).float()
    preds = model.postprocess({"semantic": logits, "center": t.center, "offset": t.offset})
    for p, s, i in zip(preds, sem, ins, strict=True):
        assert_consistent(p, 64, 64, things)
        assert torch.equal(p.semantic, s)
        assert int(p.instances.max()) == int(i.max()) > 0
        for k in range(int(i.max())):  # each true instance is one predicted mask
            assert torch.unique(p.instances[i == k + 1]).numel() == 1
        assert (p.scores > 0.9).all()


def matched(p: PanopticOutput, sem: torch.Tensor, ins: torch.Tensor) -> int:
    """The true instances that one predicted mask of their class covers with IoU > 0.5."""
    hits = 0
    for k in range(1, int(ins.max()) + 1):
        gt = ins == k
        cls = sem[gt][0]
        for m, c in zip(p.masks, p.classes, strict=True):
            if c == cls and (m & gt).sum() / (m | gt).sum() > 0.5:
                hits += 1
                break
    return hits


def test_overfits_two_synthetic_images():
    torch.manual_seed(0)
    image, sem, ins = synthetic_batch(2, 64)
    wider = {"backbone_widths": [16, 16, 32, 32], "aspp_channels": 32, "sigma": 5.0}
    wider |= {"semantic_channels": 32, "instance_channels": 32, "semantic_head_channels": 32}
    wider |= {"instance_head_channels": 16, "num_classes": 8, "thing_ids": SYNTHETIC.thing_ids}
    model = PanopticDeepLab(**{**TINY, **wider})
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    first = None
    for _ in range(200):
        losses = model.losses(image, sem, ins)
        total = sum(losses.values())
        first = first if first is not None else {k: v.item() for k, v in losses.items()}
        opt.zero_grad()
        total.backward()
        opt.step()
    assert all(losses[k].item() < 0.3 * first[k] for k in first), (first, losses)
    with torch.no_grad():
        for _ in range(20):  # settle the batch-norm running statistics
            model(image)
    preds = model.eval().predict(image)
    hits = sum(matched(p, s, i) for p, s, i in zip(preds, sem, ins, strict=True))
    assert hits >= 0.75 * int(sum(i.max() for i in ins))
