"""Tests for perpixel.models.segmentation.segnet."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from perpixel.errors import PerpixelError
from perpixel.models import build_model
from perpixel.models.segmentation.segnet import SegNet, SegNetBasic
from perpixel.models.segmentation.vgg_unet import pretrained_vgg16

from ..base import ModelTester
from .test_fcn import write_torchvision_vgg16

SMALL = {"widths": [4, 4, 6, 6, 8], "encoder_weights": None}


class TestSegNet(ModelTester):
    name = "segnet"
    model_class = SegNet
    conf = SMALL
    other_in_channels = None  # RGB only: the pretrained encoder reads Caffe BGR


class TestSegNetBasic(ModelTester):
    name = "segnet_basic"
    model_class = SegNetBasic
    conf = {"width": 6}


def assert_unpools_at_the_argmax(encoded: torch.Tensor, decoded: torch.Tensor, unpooled):
    """`unpooled` (B, C, H, W) holds each value of `decoded` (B, C, H/2, W/2) at the argmax
    of its 2x2 cell of `encoded` (B, C, H, W), zeros elsewhere."""
    pooled, idx = F.max_pool2d(encoded, 2, 2, return_indices=True)
    flat = unpooled.flatten(2)
    torch.testing.assert_close(flat.gather(2, idx.flatten(2)), decoded.flatten(2), rtol=0, atol=0)
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, idx.flatten(2), True)
    assert not flat[~mask].any()
    return pooled


def capture(model: nn.Module, encoder_stage: nn.Module, decoder_stage: nn.Module, x):
    """(encoder stage output, decoder stage input) in a forward pass of `model` on x."""
    seen = {}
    hooks = [
        encoder_stage.register_forward_hook(lambda m, i, o: seen.update(enc=o)),
        decoder_stage.register_forward_pre_hook(lambda m, i: seen.update(dec=i[0])),
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen["enc"], seen["dec"]


@pytest.mark.parametrize("stage", [0, 4])
def test_segnet_decoder_unpools_with_the_encoder_indices(stage):
    model = SegNet(num_classes=3, **SMALL).eval()
    x = torch.rand(2, 3, 45, 37)
    enc, dec = capture(model, model.backbone[stage], model.decoder[4 - stage], x)
    assert dec.shape == enc.shape  # (64, 64) padded at stage 0
    # the coarsest decoder stage unpools the pooled encoder output itself
    pooled = F.max_pool2d(enc, 2, 2)
    if stage == 4:
        assert_unpools_at_the_argmax(enc, pooled, dec)
        torch.testing.assert_close(F.max_pool2d(dec, 2, 2), pooled, rtol=0, atol=0)
    else:
        decoded = F.max_pool2d(dec, 2, 2)  # the unpooled values, as enc >= 0 after ReLU
        assert_unpools_at_the_argmax(enc, decoded, dec)


def test_segnet_layout():
    model = SegNet(num_classes=3)
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and all(c.kernel_size == (3, 3) and c.bias is None for c in convs)
    dec = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in dec] == [
        (c.out_channels, c.in_channels) for c in reversed(convs[1:])
    ]
    assert len([m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]) == 25
    assert model.head.kernel_size == (3, 3) and model.head.out_channels == 3
    # 29.4 M parameters, as the paper's 29.5 M
    assert 29.3e6 < sum(p.numel() for p in model.parameters()) < 29.5e6


def test_segnet_basic_layout_has_no_relu_in_the_decoder():
    model = SegNetBasic()
    assert isinstance(model.lrn, nn.LocalResponseNorm)
    for stage in model.encoder:
        assert [type(m) for m in stage] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
        assert stage[0].kernel_size == (7, 7) and stage[0].out_channels == 64
    for stage in model.decoder:
        assert [type(m) for m in stage] == [nn.Conv2d, nn.BatchNorm2d]
    assert model.head.kernel_size == (1, 1) and model.head.out_channels == 11
    assert 1.40e6 < sum(p.numel() for p in model.parameters()) < 1.43e6  # paper: 1.425 M
    # without a ReLU, the decoder passes negative values on
    model.eval()
    enc, dec = capture(model, model.encoder[3], model.decoder[0], torch.rand(1, 3, 40, 50))
    assert_unpools_at_the_argmax(enc, F.max_pool2d(enc, 2, 2), dec)
    _, later = capture(model, model.encoder[2], model.decoder[1], torch.rand(1, 3, 40, 50))
    assert (later < 0).any()


def test_segnet_basic_without_lrn():
    model = build_model({"name": "segnet_basic", "input_lrn": False, "depth": 2, "width": 4})
    assert isinstance(model.lrn, nn.Identity) and len(model.encoder) == 2
    assert model(torch.rand(1, 3, 9, 11)).shape == (1, 11, 9, 11)


def test_torchvision_file_loads_into_the_encoder(tmp_path):
    write_torchvision_vgg16(tmp_path / "vgg16.pth")
    model = SegNet(encoder_weights=str(tmp_path / "vgg16.pth"))
    assert model.load_pretrained() == str(tmp_path / "vgg16.pth")
    state, _ = pretrained_vgg16(str(tmp_path / "vgg16.pth"))
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    weights = [v for k, v in state.items() if k.endswith(".weight")]
    assert len(convs) == len(weights) == 13
    for conv, weight in zip(convs, weights, strict=True):
        assert torch.equal(conv.weight, weight)


def test_pretrained_needs_vgg16_widths():
    with pytest.raises(PerpixelError, match="needs the VGG16 widths"):
        SegNet(**{**SMALL, "encoder_weights": "hed"}).load_pretrained()
    assert SegNet(**SMALL).load_pretrained() is None
