"""Tests for perpixel.models.edges.unet_edges."""

import torch

from perpixel.models.edges.unet_edges import UNetEdges
from perpixel.models.segmentation.unet import UNet

from ..base import ModelTester


class TestUNetEdges(ModelTester):
    name = "unet_edges"
    model_class = UNetEdges
    conf = {"depth": 3, "base_channels": 4}
    num_sides = 3


class TestUNetEdgesBilinear(ModelTester):
    name = "unet_edges"
    model_class = UNetEdges
    conf = {"depth": 2, "base_channels": 4, "batch_norm": False, "upsample": "bilinear"}
    num_sides = 2


def test_one_side_per_decoder_scale():
    model = UNetEdges(depth=4, base_channels=8)
    assert [s.in_channels for s in model.sides] == [64, 32, 16, 8]  # coarsest first
    # no unused classifier: a U-Net trunk, not a whole UNet with its head
    assert not any(isinstance(m, UNet) for m in model.modules())
    assert not any(k.startswith("head") or ".head." in k for k in model.state_dict())
    assert (model.fuse.weight == 0.25).all()


def test_fused_starts_as_the_mean_of_the_sides():
    torch.manual_seed(0)
    model = UNetEdges(depth=3, base_channels=4).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 21, 30))
    mean = torch.stack(out["sides"]).mean(0)
    torch.testing.assert_close(out["fused"], mean)
    # coarse sides are smoother than the finest one
    coarse, fine = out["sides"][0], out["sides"][-1]
    assert coarse.diff(dim=-1).abs().mean() < fine.diff(dim=-1).abs().mean()
