"""Tests for perpixel.models.segmentation.unet."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.errors import ConfigError
from perpixel.models import build_model
from perpixel.models.segmentation.unet import UNet

from ..base import ModelTester


class TestUNet(ModelTester):
    name = "unet"
    model_class = UNet
    conf = {"depth": 3, "base_channels": 8}


class TestUNetBilinearNoBatchNorm(ModelTester):
    name = "unet"
    model_class = UNet
    conf = {"depth": 2, "base_channels": 4, "batch_norm": False, "upsample": "bilinear"}


def small(**conf) -> UNet:
    torch.manual_seed(0)
    return UNet(**{"base_channels": 4, "num_classes": 3, **conf})


def test_default_unet_is_the_default_model():
    model = build_model({})
    assert isinstance(model, UNet)
    assert model.backbone.widths == [32, 64, 128, 256, 512]
    assert model.backbone.multiple == 16
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, 19, 21)).shape == (1, 2, 19, 21)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_depth(depth):
    model = small(depth=depth)
    assert len(model.backbone.down) == depth
    assert len(model.backbone.up) == depth
    assert model.backbone.multiple == 2**depth
    assert model(torch.rand(1, 3, 17, 29)).shape == (1, 3, 17, 29)


def test_base_and_max_channels_set_the_widths():
    model = small(depth=3, base_channels=8, max_channels=16)
    assert model.backbone.widths == [8, 16, 16, 16]
    assert model.backbone.stem[0].out_channels == 8
    assert model.head.in_channels == 8
    assert max(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)) == 16


def test_batch_norm_switch():
    with_bn = small(depth=2)
    without = small(depth=2, batch_norm=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    # without batch norm the convolutions carry their own bias
    assert all(m.bias is not None for m in without.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(("mode", "has_transpose"), [("transpose", True), ("bilinear", False)])
def test_upsample_variants(mode, has_transpose):
    model = small(depth=2, upsample=mode)
    found = any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert found == has_transpose
    assert model(torch.rand(2, 3, 37, 53)).shape == (2, 3, 37, 53)


def test_unknown_upsample_raises():
    with pytest.raises(ValueError, match="nearest"):
        small(upsample="nearest")
    with pytest.raises(ConfigError, match="nearest"):
        build_model({"name": "unet", "upsample": "nearest"})


def test_output_is_cropped_back_not_resized():
    """Odd sizes are padded (bottom/right, replicate) to a multiple of 2**depth and the
    output cropped back: the result is the top-left window of the padded input's output."""
    model = small(depth=3).eval()
    x = torch.rand(1, 3, 17, 29)
    with torch.no_grad():
        out = model(x)
        padded = model(F.pad(x, (0, 3, 0, 7), mode="replicate"))  # 24 x 32
    assert padded.shape[-2:] == (24, 32)
    torch.testing.assert_close(out, padded[..., :17, :29])


def test_size_already_a_multiple_is_not_padded():
    model = small(depth=2).eval()
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        y = model(x)
        # a size that is already a multiple of 2**depth goes through unchanged
        direct = model.head(model.backbone(x)[-1])
    torch.testing.assert_close(y, direct)


def test_decoder_features_coarsest_first():
    model = small(depth=3, base_channels=4)
    feats = model.backbone.decode(torch.rand(1, 3, 16, 16))
    assert [f.shape[-1] for f in feats] == [4, 8, 16]
    assert [f.shape[1] for f in feats] == [16, 8, 4]


def test_dropout_is_random_in_training_only():
    model = small(depth=2, dropout=0.5)
    x = torch.rand(1, 3, 16, 16)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
