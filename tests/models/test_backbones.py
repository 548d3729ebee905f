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


# ---------------------------------------------------------------- ResNet, build_backbone

# torchvision's parameter counts less the classifier (fc: 512 e x 1000 + 1000)
RESNET_PARAMETERS = {18: 11_176_512, 34: 21_284_672, 50: 23_508_032}


def _torchvision_resnet_keys(depth: int) -> set[str]:
    """torchvision's ResNet state-dict keys without `fc.`, written out from its layout."""
    from perpixel.models.backbones.resnet import RESNET_LAYERS

    blocks, kind = RESNET_LAYERS[depth]
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {"conv1.weight"} | {f"bn1.{b}" for b in bn}
    for stage, n in enumerate(blocks, start=1):
        for i in range(n):
            p = f"layer{stage}.{i}"
            for j in range(1, 3 if kind == "basic" else 4):
                keys |= {f"{p}.conv{j}.weight"} | {f"{p}.bn{j}.{b}" for b in bn}
            if i == 0 and (stage > 1 or kind == "bottleneck"):
                keys |= {f"{p}.downsample.0.weight"} | {f"{p}.downsample.1.{b}" for b in bn}
    return keys


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_resnet_has_torchvisions_parameters_and_keys(depth):
    from perpixel.models.backbones import build_backbone

    trunk = build_backbone(f"resnet{depth}")
    assert sum(p.numel() for p in trunk.parameters()) == RESNET_PARAMETERS[depth]
    keys = set(trunk.state_dict())
    assert keys == _torchvision_resnet_keys(depth)
    assert len(keys) == {18: 120, 34: 216, 50: 318}[depth]
    assert {"layer1.0.conv1.weight", "layer2.0.downsample.0.weight"} <= keys
    e = 4 if depth == 50 else 1
    assert trunk.out_channels == [64, 64 * e, 128 * e, 256 * e, 512 * e]
    # a dilated trunk has the same parameters: the same weights load
    dilated = build_backbone(f"resnet{depth}", output_stride=8)
    assert {k: v.shape for k, v in dilated.state_dict().items()} == {
        k: v.shape for k, v in trunk.state_dict().items()
    }


@pytest.mark.parametrize(
    ("output_stride", "strides"),
    [(32, [2, 4, 8, 16, 32]), (16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8])],
)
def test_resnet_output_stride_dilates_the_last_stages(output_stride, strides):
    from perpixel.models.backbones import ResNet

    trunk = ResNet(50, widths=[2, 2, 3, 4], output_stride=output_stride).eval()
    assert trunk.strides == strides
    with torch.no_grad():
        feats = trunk(torch.rand(1, 3, 37, 53))
    assert [tuple(f.shape[-2:]) for f in feats] == [
        (math.ceil(37 / s), math.ceil(53 / s)) for s in strides
    ]
    # each stage that keeps the resolution dilates its 3x3 convolutions by 2 more (its
    # first block keeps the previous dilation, as torchvision's)
    want = {32: (1, 1, 1, 1), 16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}[output_stride]
    for stage, d in enumerate(want, start=1):
        layer = getattr(trunk, f"layer{stage}")
        assert [b.conv2.dilation[0] for b in layer[1:]] == [d] * (len(layer) - 1)
        first = want[stage - 2] if stage > 1 else 1
        assert layer[0].conv2.dilation[0] == first
        assert layer[0].conv2.stride[0] == (2 if stage > 1 and d == 1 else 1)


def test_vgg16_output_stride_8_keeps_the_weights_and_the_last_resolution():
    from perpixel.models.backbones import build_backbone

    torch.manual_seed(0)
    at16 = build_backbone("vgg16", output_stride=16, widths=[2, 3, 4, 5, 6]).eval()
    at8 = build_backbone("vgg16", output_stride=8, widths=[2, 3, 4, 5, 6]).eval()
    assert at16.strides == [1, 2, 4, 8, 16] and at8.strides == [1, 2, 4, 8, 8]
    assert {k: v.shape for k, v in at8.state_dict().items()} == {
        k: v.shape for k, v in at16.state_dict().items()
    }
    at8.load_state_dict(at16.state_dict())
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        f16, f8 = at16(x), at8(x)
    for a, b in zip(f16[:4], f8[:4], strict=True):  # stages 1..4 are the same network
        assert torch.equal(a, b)
    assert f8[4].shape[-2:] == f8[3].shape[-2:] == (5, 7)
    assert f16[4].shape[-2:] == (3, 4)


def test_build_backbone_rejects_unknown_names_and_strides():
    from perpixel.models.backbones import build_backbone

    with pytest.raises(ValueError, match="unknown backbone 'resnet101'"):
        build_backbone("resnet101")
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 4"):
        build_backbone("resnet18", output_stride=4)
    with pytest.raises(ValueError, match="output_stride must be 8 or 16, got 32"):
        build_backbone("vgg16", output_stride=32)
