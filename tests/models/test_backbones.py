"""Tests for perpixel.models.backbones and perpixel.models.layers."""

import math

import pytest
import torch
import torch.nn as nn

from perpixel.models.backbones import (
    VGG16,
    VGG16_CONVS,
    UNetTrunk,
    doubling_widths,
    vgg16_conv_names,
)
from perpixel.models.layers import Up, conv_block, pad_to_multiple, upsample_to

# ---------------------------------------------------------------- VGG16


def test_vgg16_stages():
    torch.manual_seed(0)
    trunk = VGG16(widths=[2, 3, 4, 5, 6])
    assert trunk.out_channels == [2, 3, 4, 5, 6]
    feats = trunk(torch.rand(2, 3, 37, 53))
    assert [f.shape for f in feats] == [
        (2, w, math.ceil(37 / 2**k), math.ceil(53 / 2**k)) for k, w in enumerate([2, 3, 4, 5, 6])
    ]
    convs = [m for m in trunk.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(VGG16_CONVS) == 13


def test_vgg16_conv_names_point_at_the_convolutions():
    trunk = VGG16(in_channels=1, widths=[2] * 5)
    modules = dict(trunk.named_modules())
    names = [n for stage in vgg16_conv_names() for n in stage]
    assert [type(modules[n]) for n in names] == [nn.Conv2d] * 13
    assert modules[names[0]].in_channels == 1
    assert names == [n for n, m in trunk.named_modules() if isinstance(m, nn.Conv2d)]


def test_vgg16_needs_five_widths():
    with pytest.raises(ValueError, match="VGG16: widths needs 5 entries"):
        VGG16(widths=[4, 4])


# ---------------------------------------------------------------- U-Net trunk


def test_unet_trunk_decoder_features():
    trunk = UNetTrunk(in_channels=2, widths=[4, 8, 16], batch_norm=False, upsample="bilinear")
    assert trunk.multiple == 4
    assert trunk.out_channels == [8, 4]
    feats = trunk(torch.rand(1, 2, 16, 24))
    assert [f.shape for f in feats] == [(1, 8, 8, 12), (1, 4, 16, 24)]
    torch.testing.assert_close(
        trunk.decode(torch.ones(1, 2, 8, 8))[-1], trunk(torch.ones(1, 2, 8, 8))[-1]
    )


def test_unet_trunk_needs_a_downsampling():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        UNetTrunk(widths=[8])


def test_doubling_widths():
    assert doubling_widths(32, 4, 512) == [32, 64, 128, 256, 512]
    assert doubling_widths(8, 3, 16) == [8, 16, 16, 16]


# ---------------------------------------------------------------- layers


def test_conv_block_and_up():
    block = conv_block(3, 5, batch_norm=True)
    assert block(torch.rand(2, 3, 7, 9)).shape == (2, 5, 7, 9)
    assert all(m.bias is None for m in block if isinstance(m, nn.Conv2d))
    up = Up(8, 4, 6, "transpose", batch_norm=False)
    assert up(torch.rand(1, 8, 3, 5), torch.rand(1, 4, 6, 10)).shape == (1, 6, 6, 10)
    with pytest.raises(ValueError, match="'nearest'"):
        Up(8, 4, 6, "nearest", batch_norm=False)


def test_pad_to_multiple_replicates_the_bottom_right():
    x = torch.rand(2, 3, 17, 29)
    padded, size = pad_to_multiple(x, 8)
    assert size == (17, 29)
    assert padded.shape == (2, 3, 24, 32)
    assert torch.equal(padded[..., :17, :29], x)
    assert torch.equal(padded[..., 20, :29], x[..., 16, :])  # last row repeated
    assert torch.equal(padded[..., :17, 31], x[..., 28])  # last column repeated
    same, size = pad_to_multiple(torch.rand(1, 1, 16, 24), 8)
    assert same.shape == (1, 1, 16, 24) and size == (16, 24)


def test_upsample_to():
    x = torch.rand(1, 2, 3, 4)
    assert upsample_to(x, (3, 4)) is x
    y = upsample_to(x, (6, 8))
    assert y.shape == (1, 2, 6, 8)
    assert x.min() <= y.min() and y.max() <= x.max()  # interpolates, never overshoots
    flat = upsample_to(torch.full((1, 1, 3, 5), 0.25), (7, 11))
    torch.testing.assert_close(flat, torch.full((1, 1, 7, 11), 0.25))
