"""Tests for perpixel.models.segmentation.linear."""

import torch

from perpixel.models.segmentation.linear import PixelLinear

from ..base import ModelTester


class TestPixelLinear(ModelTester):
    name = "linear"
    model_class = PixelLinear
    conf = {}


def test_parameter_count():
    model = PixelLinear(in_channels=3, num_classes=5)
    assert sum(p.numel() for p in model.parameters()) == 3 * 5 + 5


def test_is_a_linear_map_of_each_pixel_colour():
    torch.manual_seed(0)
    model = PixelLinear(num_classes=4)
    x = torch.rand(2, 3, 5, 7)
    w = model.classifier.weight[:, :, 0, 0]  # (4, 3)
    b = model.classifier.bias
    expected = torch.einsum("kc,bchw->bkhw", w, x) + b[None, :, None, None]
    torch.testing.assert_close(model(x), expected)


def test_no_spatial_context():
    torch.manual_seed(0)
    model = PixelLinear(num_classes=4).eval()
    x = torch.rand(1, 3, 9, 11)
    changed = x.clone()
    changed[0, :, 4, 6] = 1 - changed[0, :, 4, 6]
    with torch.no_grad():
        diff = (model(changed) - model(x)).abs().sum(1)[0]  # (H, W)
    assert diff[4, 6] > 0
    diff[4, 6] = 0
    assert (diff == 0).all()
